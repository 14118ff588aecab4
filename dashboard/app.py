"""Send to Buyer — the dashboard (minimal: the status table; actions come next).

Reads the ledger read-only with short connections (DuckDB allows one writer or many
readers), so it can be open while a nightly run writes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from courier.ledger import Ledger, LedgerBusy

LEDGER_PATH = Path(os.environ.get("COURIER_LEDGER_PATH", "data/ledger.duckdb"))

# Plain symbols that every font has (emoji need a colour-emoji font many desktops lack).
SMS_SYMBOLS = {
    "sent": "✓",
    "failed": "✗",
    "not_sent": "✗",
    "unknown": "?",
    "retry": "…",
    "pending": "…",
    "waiting": "…",
}
DOC_SYMBOLS = {"uploaded": "✓", "failed": "✗", "not_uploaded": "…"}


@st.cache_data(ttl=5, show_spinner=False)
def load_status(path: str) -> pd.DataFrame:
    with Ledger(Path(path)).connect(read_only=True) as con:
        return con.execute("SELECT * FROM invoice_status ORDER BY issued_at DESC").df()


def present(frame: pd.DataFrame) -> pd.DataFrame:
    """What a person reads: symbols, reasons, sent time, masked phone."""
    sms = frame["sms_status"].map(SMS_SYMBOLS).fillna("") + " " + frame["sms_status"]
    sent_at = frame["last_sent_at"].dt.tz_convert("Asia/Bangkok").dt.strftime("%Y-%m-%d %H:%M")
    return pd.DataFrame(
        {
            "Invoice": frame["invoice_number"],
            "Date": frame["issued_at"].dt.tz_convert("Asia/Bangkok").dt.date,
            "Buyer": frame["buyer_name"],
            "Amount": frame["grand_total"].map("{:,.2f}".format) + " " + frame["currency"],
            "Phone": frame["phone_masked"],
            "Document": frame["document_status"].map(DOC_SYMBOLS).fillna("")
            + " "
            + frame["document_error"].fillna(""),
            "SMS": sms,
            "Sent at": sent_at.fillna(""),
            "Reason": frame["reason"].fillna(""),
            "Sends": frame["sends"],
            "Charges": frame["total_charges"].astype(float),
            "PDF": frame["pdf_url"],
            "XML": frame["xml_url"],
        }
    )


def main() -> None:
    st.set_page_config(page_title="Send to Buyer — Courier", layout="wide")
    st.title("Send to Buyer")
    if not LEDGER_PATH.exists():
        st.info(f"No ledger yet at {LEDGER_PATH}. Run `make demo` first.")
        return
    try:
        frame = load_status(str(LEDGER_PATH))
    except LedgerBusy:
        st.warning("The nightly run is writing the ledger; this page refreshes in a moment.")
        return
    sent = int((frame["sms_status"] == "sent").sum())
    cols = st.columns(4)
    cols[0].metric("Invoices", len(frame))
    cols[1].metric("SMS sent", sent)
    cols[2].metric("Not sent", len(frame) - sent)
    cols[3].metric("Charges (USD)", f"{frame['total_charges'].astype(float).sum():,.4f}")
    st.dataframe(
        present(frame),
        hide_index=True,
        use_container_width=True,
        column_config={
            "PDF": st.column_config.LinkColumn("PDF", display_text="PDF"),
            "XML": st.column_config.LinkColumn("XML", display_text="XML"),
            "Charges": st.column_config.NumberColumn("Charges", format="%.4f"),
        },
    )
    st.caption("Phone numbers are masked. Open a document with its PDF / XML link.")


main()
