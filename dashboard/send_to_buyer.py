"""The "Send to Buyer" tab: the invoice table, its filters, row actions and "Send All".

Layout only: what a row says, which rows a filter keeps and what "Send All" will send and
cost (by SMS, e-mail or both) come from ``courier.screens``; writes go through the Prefect
flows of ``flows/actions.py`` (``edit-phone``, ``send-sms``), which record every action.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from datetime import date
from pathlib import Path

import httpx
import pandas as pd
import streamlit as st

from courier import actions, screens
from courier.channels import EMAIL, SMS
from courier.ledger import Ledger, LedgerBusy
from dashboard import send_all
from dashboard.auth import Access
from dashboard.shared import (
    BUSY,
    LEDGER_WAIT_S,
    Sending,
    close_dialog,
    flow_edit_phone,
    flow_send_sms,
    new_request_id,
    notice,
    session,
    show_notice,
)

# The action flows under their names before ``dashboard.shared`` (a test calls them here).
_flow_edit_phone = flow_edit_phone
_flow_send_sms = flow_send_sms

#: Largest document the viewer fetches.
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024


def shows_email(options: screens.FilterOptions, sending: Sending) -> bool:
    """The e-mail column and filter are shown where e-mail is configured, or was used
    (what went stays visible); a page that never had e-mail keeps its SMS-only look."""
    return sending.email_enabled or options.email_in_use


# --------------------------------------------------------------------------- filters


def current_filters(options: screens.FilterOptions) -> screens.Filters:
    """The filters as last set. The sidebar's widgets keep their values in the session
    (under their keys), so the table can be drawn from them *before* the sidebar is: the
    page then shows the table first, and loads the date picker and the pick lists after
    (a new visitor's first render, ~0.3 s sooner at 100k invoices)."""
    state = st.session_state
    chosen = state.get("filter_issued", (options.first_day, options.last_day))
    days = list(chosen) if isinstance(chosen, list | tuple) else [chosen]
    days = [d for d in days if isinstance(d, date)]
    return screens.Filters(
        issued_from=days[0] if days else None,
        issued_to=days[1] if len(days) > 1 else None,
        sellers=tuple(state.get("filter_seller", ())),
        sms_statuses=tuple(state.get("filter_sms_status", ())),
        email_statuses=tuple(state.get("filter_email_status", ())),
        reasons=tuple(state.get("filter_reason", ())),
        search=state.get("filter_search", "") or "",
    )


def sidebar_filters(options: screens.FilterOptions, *, show_email: bool = False) -> None:
    """Draw the sidebar's filters (on every complete run, whichever tab is open, so they
    keep their values); :func:`current_filters` reads what they were set to."""
    with st.sidebar:
        st.header("Filters")
        if options.first_day is not None and options.last_day is not None:
            st.date_input(
                "Issued between",
                value=(options.first_day, options.last_day),
                key="filter_issued",
            )
        st.multiselect("Seller", options.sellers, key="filter_seller")
        st.multiselect(
            "SMS status",
            options.sms_statuses,
            format_func=lambda s: screens.SMS_STATUS_LABELS.get(s, s),
            key="filter_sms_status",
        )
        if show_email:
            st.multiselect(
                "E-mail status",
                options.email_statuses,
                format_func=lambda s: screens.EMAIL_STATUS_LABELS.get(s, s),
                key="filter_email_status",
            )
        st.multiselect("Reason", options.reasons, key="filter_reason")
        st.text_input("Search", key="filter_search", placeholder="Invoice number or buyer")


# --------------------------------------------------------------------------- documents


@st.cache_data(ttl=600, show_spinner=False, max_entries=32)
def _fetch_document(url: str) -> bytes:
    """The stored document, fetched by the server (the buyer's link)."""
    with httpx.stream("GET", url, timeout=10.0, follow_redirects=False) as response:
        response.raise_for_status()
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > MAX_DOCUMENT_BYTES:
                raise ValueError("document larger than the viewer allows")
            chunks.append(chunk)
    return b"".join(chunks)


def _viewer() -> None:
    viewer = session().get("viewer")
    if not viewer:
        return
    number, kind, url = viewer["invoice"], viewer["kind"], viewer["url"]
    label = kind.upper()
    st.subheader(f"{label} of {number}")
    try:
        content = _fetch_document(url)
    except (httpx.HTTPError, ValueError) as error:
        st.error(f"Could not open the {label}: {error}")
        st.button("Close document", key="close_viewer", on_click=session().pop, args=("viewer",))
        return
    if kind == "pdf":
        st.download_button(
            "Download PDF",
            content,
            file_name=f"{number}.pdf",
            mime="application/pdf",
            on_click="ignore",  # the page stays as it is (no rerun for a download)
        )
        digest = hashlib.sha256(content).hexdigest()[:16]
        path = Path(tempfile.gettempdir()) / "courier-dashboard" / f"{digest}.pdf"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        st.iframe(path, height=820, alt=f"Invoice {number} (PDF)")
    else:
        st.download_button(
            "Download XML",
            content,
            file_name=f"{number}.xml",
            mime="application/xml",
            on_click="ignore",  # the page stays as it is (no rerun for a download)
        )
        st.code(content.decode("utf-8", errors="replace"), language="xml")
    st.button("Close document", key="close_viewer", on_click=session().pop, args=("viewer",))


# --------------------------------------------------------------------------- dialogs


@st.dialog("Edit telephone number", on_dismiss=close_dialog)
def _edit_phone_dialog(access: Access) -> None:
    target = session().get("edit_target") or {}
    number = target.get("invoice", "")
    st.write(f"Invoice **{number}** — {target.get('buyer', '')}")
    region = target.get("country", "")
    raw = st.text_input(
        "Telephone number",
        value=target.get("raw", ""),
        key=f"edit_phone_value_{number}",
        live=True,
    )
    st.caption("One mobile number, as the buyer gave it (081-234-5678, +66 81 234 5678).")
    check = screens.check_phone(raw or "", region)
    if check.ok:
        st.caption(f"Mobile number — texted as {check.result.e164}")
    else:
        st.error(check.message)
    if st.button("Update", type="primary", disabled=not check.ok):
        with st.status("Updating the telephone number…", expanded=True) as box:
            try:
                summary = flow_edit_phone(number, raw or "", access.user)
            except Exception as error:
                box.update(label="The update failed", state="error")
                st.error(f"The edit-phone flow failed: {error}")
                return
            box.update(label="Updated", state="complete")
        result = summary.get("result", {})
        if not result.get("updated"):
            st.error(result.get("reason") or "The number was not changed.")
            return
        session()["dialog"] = None
        notice(
            "success",
            f"Telephone number of {number} updated: {result.get('phone_masked', '')}. "
            "The SMS can be sent now.",
        )
        st.rerun()


# --------------------------------------------------------------------------- the tab


def _metrics(frame: pd.DataFrame, show_email: bool) -> None:
    sent = int((frame["sms_status"] == "sent").sum())
    currencies = frame["charge_currency"].dropna().unique()
    currency = str(currencies[0]) if len(currencies) == 1 else "USD"
    total = math.fsum(frame["total_charges"].fillna(0).astype(float))  # display only
    shown = [
        ("Invoices", f"{len(frame):,}"),
        ("SMS sent", f"{sent:,}"),
        ("Not sent", f"{len(frame) - sent:,}"),
    ]
    if show_email and "email_send_status" in frame:
        shown.append(("E-mails sent", f"{int((frame['email_send_status'] == 'sent').sum()):,}"))
    shown.append((f"Charges ({currency})", f"{total:,.4f}"))
    for col, (label, value) in zip(st.columns(len(shown)), shown, strict=True):
        col.metric(label, value)


def _has(row: pd.Series | None, column: str) -> bool:
    return row is not None and isinstance(row.get(column), str) and bool(row.get(column))


def _table_key(shown: pd.DataFrame) -> str:
    """A key that changes with the set of rows shown, so a selection never points at other
    invoices after the filters change (it survives a row's cells changing)."""
    digest = int(pd.util.hash_pandas_object(shown["invoice_number"], index=False).sum())
    return f"send_table_{digest & 0xFFFFFFFF:08x}"


def _row_send(
    pressed: bool,
    numbers: list[str],
    request_key: str,
    channels: tuple[str, ...],
    access: Access,
    sending: Sending,
) -> None:
    """A row action's send by ``channels``, one request id per press: the id is kept until
    a send finished, so a click queued behind it reuses it (and sends nothing new)."""
    state = session()
    request = state.setdefault(request_key, {"id": new_request_id(), "done": False})
    if not pressed:
        if request["done"]:
            state[request_key] = {"id": new_request_id(), "done": False}
        return
    what = "SMS" if channels == (SMS,) else "e-mail"
    with st.status(f"Sending {what} for {len(numbers)} invoice(s)…", expanded=True) as box:
        try:
            summary = flow_send_sms(numbers, request["id"], access.user, None, channels)
        except Exception as error:
            box.update(label="The send failed", state="error")
            st.error(f"The send-sms flow failed: {error}. Pressing again sends only the rest.")
            return
        request["done"] = True  # first thing after the flow: a queued click reuses the id
        box.update(label="Sent", state="complete")
    notice(*screens.describe_send(summary.get("result", {}), sending.currency, channels))
    st.rerun()


def render(
    status: pd.DataFrame,
    filters: screens.Filters,
    ledger_path: Path,
    access: Access,
    sending: Sending,
    *,
    show_email: bool = False,
) -> str | None:
    """Draw the tab; returns the invoice number when exactly one row is selected."""
    state = session()
    show_notice()
    if not sending.ready:
        st.warning(sending.problem)
    filtered = screens.apply_filters(status, filters)
    _metrics(filtered, show_email)

    shown = filtered.head(screens.MAX_TABLE_ROWS).reset_index(drop=True)
    table = screens.present_table(shown, email=show_email)
    event = st.dataframe(
        table,
        key=_table_key(shown),
        on_select="rerun",
        selection_mode="multi-row",
        hide_index=True,
        width="stretch",
        column_config={
            # Widths of the long-text columns given: measuring their 1,000 cells costs the
            # browser a tenth of a second on a first visit.
            "Seller": st.column_config.TextColumn("Seller", width=150),
            "Buyer": st.column_config.TextColumn("Buyer", width=150),
            "SMS": st.column_config.TextColumn("SMS", width=140),
            "E-mail": st.column_config.TextColumn("E-mail", width=230),
            "Charges": st.column_config.NumberColumn("Charges", format="%.4f"),
            "Sends": st.column_config.NumberColumn("Sends", format="%d"),
        },
    )
    masked = "Phone numbers and e-mail addresses are" if show_email else "Phone numbers are"
    st.caption(
        screens.showing_note(len(table), len(filtered))
        + f" {masked} masked; select rows to act on them."
    )
    rows = list(event.selection.rows) if event is not None else []
    picked = shown.iloc[[r for r in rows if 0 <= r < len(shown)]]
    numbers = picked["invoice_number"].astype(str).tolist()
    one = picked.iloc[0] if len(picked) == 1 else None

    may_act = access.can_send and sending.ready
    why = access.why_not if not access.can_send else sending.problem
    by_email = screens.email_action(one, sending.email_enabled)
    cols = st.columns([1, 1, 1.3, 1, 1, 2])
    edit = cols[0].button(
        "Edit phone",
        disabled=not (may_act and one is not None),
        help=why or "Select one row to change its buyer's number.",
    )
    send = cols[1].button(
        "Send SMS",
        disabled=not (may_act and numbers),
        help=why or "A new, charged SMS with a fresh link to each selected buyer.",
    )
    send_email = cols[2].button(
        by_email.label,
        key="send_email_row",  # one widget whether it reads "Send" or "Resend"
        disabled=not (may_act and by_email.allowed),
        help=why or by_email.why_not or "A new e-mail with the invoice to the selected buyer.",
    )
    view_pdf = cols[3].button("View PDF", disabled=not _has(one, "pdf_url"))
    view_xml = cols[4].button(
        "View XML",
        disabled=not _has(one, "xml_url"),
        help="Sellers outside Thailand have no e-Tax XML yet." if one is not None else None,
    )
    send_all_pressed = cols[5].button(
        "Send All" if sending.email_enabled else "Send All by SMS",
        type="primary",
        disabled=not may_act or filtered.empty,
        help=why or "The checked rows, or every row matching the filters when none is checked.",
    )
    if numbers:
        st.caption(
            f"{len(numbers)} selected: {', '.join(numbers[:5])}{'…' if len(numbers) > 5 else ''}"
        )
    if one is not None and may_act and not by_email.allowed:
        st.caption(f"Not by e-mail: {by_email.why_not}")

    _row_send(send, numbers, "sms_request", (SMS,), access, sending)
    _row_send(send_email, numbers, "email_request", (EMAIL,), access, sending)

    if edit and one is not None:
        try:
            phone = actions.current_phone(
                Ledger(ledger_path, lock_wait_s=LEDGER_WAIT_S), str(one["invoice_number"])
            )
        except LedgerBusy:
            st.warning(BUSY)
            return None
        state["edit_target"] = {
            "invoice": str(one["invoice_number"]),
            "buyer": str(one["buyer_name"]),
            "raw": phone[0] if phone else "",
            "country": phone[1] if phone else str(one["buyer_country"]),
        }
        state["dialog"] = "edit_phone"
    if send_all_pressed:
        chosen = numbers or filtered["invoice_number"].astype(str).tolist()
        state["send_all_numbers"] = chosen
        state["send_all_scope"] = (
            "the checked rows" if numbers else "every invoice matching the filters"
        )
        state["send_all_request"] = new_request_id()
        state.pop("send_all_preview", None)
        state.pop("send_all_channel", None)  # each opening starts from SMS
        state["dialog"] = "send_all"
    if (view_pdf or view_xml) and one is not None:
        kind = "pdf" if view_pdf else "xml"
        state["viewer"] = {
            "invoice": str(one["invoice_number"]),
            "kind": kind,
            "url": str(one[f"{kind}_url"]),
        }

    _viewer()
    dialog = state.get("dialog")
    if dialog == "edit_phone":
        _edit_phone_dialog(access)
    elif dialog == "send_all" and sending.ready:
        if sending.email_enabled:
            send_all.dialog(ledger_path, sending, access)
        else:
            send_all.sms_dialog(ledger_path, sending, access)
    return str(one["invoice_number"]) if one is not None else None
