"""Send to Buyer — the dashboard (``make dashboard``; ``streamlit run dashboard/app.py``).

Three tabs: "Send to Buyer" (which invoices reached their buyers; fix a number, send again,
send everything knowing the cost first; one invoice's reminders), "Reminders" (the rules,
what the next run sends and costs, pauses, send a step now) and "Analytics" (funnel,
failures, charges, runs).
Reads come from ``dashboard.data``; writes go through the Prefect flows in
``flows/actions.py``. Access: ``dashboard.auth``.
"""

from __future__ import annotations

import streamlit as st

from courier.ledger import LedgerBusy
from courier.settings import load_dashboard_settings
from dashboard import analytics, data, reminders, send_to_buyer, shared
from dashboard.auth import gate


def main() -> None:
    st.set_page_config(page_title="Send to Buyer — Courier", layout="wide")
    try:
        settings = load_dashboard_settings()
    except ValueError as error:  # SettingsError / pydantic ValidationError
        st.error(f"The dashboard's settings are not usable: {error}")
        st.stop()
    access = gate(settings)
    st.title("Send to Buyer")
    ledger_path = settings.ledger_path
    if not ledger_path.exists():
        st.info(f"No ledger yet at {ledger_path}. Run `make demo` first.")
        return
    try:
        data.ensure_snapshot(ledger_path)
        status = data.load(ledger_path, "invoice_status")
    except LedgerBusy:
        st.warning("The nightly run is writing the ledger; this page refreshes in a moment.")
        return
    sending = shared.sending_setup()
    options = data.filter_options(ledger_path)
    filters = send_to_buyer.current_filters(options)
    show_email = send_to_buyer.shows_email(options, sending)
    # Lazy tabs: only the open tab's content runs and is sent (charts cost the browser).
    send_tab, reminders_tab, analytics_tab = st.tabs(
        ["Send to Buyer", "Reminders", "Analytics"], key="tab", on_change="rerun"
    )
    if send_tab.open:
        with send_tab:
            one = send_to_buyer.render(
                status, filters, ledger_path, access, sending, show_email=show_email
            )
            if one is not None:
                reminders.invoice_panel(ledger_path, one, sending)
    if reminders_tab.open:
        with reminders_tab:
            reminders.render(ledger_path, access, sending)
    if analytics_tab.open:
        with analytics_tab:
            analytics.render(
                status, data.load(ledger_path, "charges"), data.load(ledger_path, "runs")
            )
    # Last: the table need not wait for the sidebar's widgets (see current_filters).
    send_to_buyer.sidebar_filters(options, show_email=show_email)


# Streamlit runs this file as ``__main__``. The guard matters: the PDF render pool's worker
# processes (forkserver) import the parent's main module again as ``__mp_main__``, and
# must not run the whole page in there.
if __name__ == "__main__":
    main()
