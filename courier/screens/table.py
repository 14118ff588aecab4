"""The invoice table: its filters (vectorised; fine on 100k rows) and its cells (only the
rows actually displayed are formatted)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Final

import pandas as pd

from courier.screens._format import DISPLAY_TZ, as_money, as_text, column, to_local

#: Most rows the table renders; filters and counts always cover every row.
MAX_TABLE_ROWS: Final = 1000

#: ``invoice_status.sms_status`` values, in the order the "SMS status" filter lists them,
#: with the words a person reads.
SMS_STATUS_LABELS: Final[Mapping[str, str]] = {
    "sent": "Sent",
    "failed": "Failed",
    "not_sent": "Not sent",
    "waiting": "Waiting",
    "pending": "Sending",
    "retry": "Retrying",
    "unknown": "Unknown",
}

#: ``invoice_status.email_send_status`` values, in the order the "E-mail status" filter
#: lists them. An e-mail is ``pending`` once claimed and ``sending`` while the relay has it.
EMAIL_STATUS_LABELS: Final[Mapping[str, str]] = {
    "sent": "Sent",
    "failed": "Failed",
    "bounced": "Bounced",
    "not_sent": "Not sent",
    "waiting": "Waiting",
    "pending": "Queued",
    "sending": "Sending",
    "retry": "Retrying",
    "unknown": "Unknown",
}

#: E-mail states that only a used e-mail channel produces (every invoice starts
#: ``waiting`` or ``not_sent``).
_EMAIL_ACTIVITY: Final = ("sent", "failed", "bounced", "pending", "sending", "retry", "unknown")

#: The table's columns, in order ("E-mail" only where e-mail is in use: ``present_table``).
TABLE_COLUMNS: Final = (
    "Invoice",
    "Date",
    "Seller",
    "Buyer",
    "Amount",
    "Phone",
    "Document",
    "SMS",
    "E-mail",
    "Delivery",
    "Sends",
    "Charges",
    "Payment",
    "Reminders",
)

# --------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class Filters:
    """The sidebar's filters; an empty selection means "no filter"."""

    issued_from: date | None = None
    issued_to: date | None = None  # inclusive
    sellers: tuple[str, ...] = ()
    sms_statuses: tuple[str, ...] = ()  # raw sms_status values (keys of SMS_STATUS_LABELS)
    reasons: tuple[str, ...] = ()
    search: str = ""
    email_statuses: tuple[str, ...] = ()  # raw email_send_status values


@dataclass(frozen=True)
class FilterOptions:
    first_day: date | None
    last_day: date | None
    sellers: list[str]
    reasons: list[str]
    sms_statuses: list[str] = field(default_factory=lambda: list(SMS_STATUS_LABELS))
    email_statuses: list[str] = field(default_factory=lambda: list(EMAIL_STATUS_LABELS))
    #: Some invoice was e-mailed (or tried): the page shows e-mail even where it is not
    #: configured now, so what was sent stays visible.
    email_in_use: bool = False


def filter_options(status: pd.DataFrame) -> FilterOptions:
    """The choices the filters offer for these invoices."""
    if status.empty:
        return FilterOptions(None, None, [], [])
    issued = to_local(status["issued_at"])
    reasons = status["reason"].dropna().astype(str)
    return FilterOptions(
        first_day=issued.min().date(),
        last_day=issued.max().date(),
        sellers=sorted(status["seller_name"].dropna().astype(str).unique()),
        reasons=sorted(reasons[reasons != ""].unique()),
        email_in_use=bool(column(status, "email_send_status").isin(_EMAIL_ACTIVITY).any()),
    )


def apply_filters(status: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """The rows of ``invoice_status`` that match every filter (vectorised, order kept).

    Dates are Bangkok calendar days, both ends included. Search is case-insensitive and
    matches part of the invoice number or of the buyer's name.
    """
    keep = pd.Series(True, index=status.index)
    if filters.issued_from is not None or filters.issued_to is not None:
        issued = pd.to_datetime(status["issued_at"], utc=True)
        if filters.issued_from is not None:
            start = pd.Timestamp(filters.issued_from).tz_localize(DISPLAY_TZ)
            keep &= issued >= start
        if filters.issued_to is not None:
            end = pd.Timestamp(filters.issued_to + timedelta(days=1)).tz_localize(DISPLAY_TZ)
            keep &= issued < end
    if filters.sellers:
        keep &= status["seller_name"].isin(list(filters.sellers))
    if filters.sms_statuses:
        keep &= status["sms_status"].isin(list(filters.sms_statuses))
    if filters.email_statuses:
        keep &= column(status, "email_send_status").isin(list(filters.email_statuses))
    if filters.reasons:
        keep &= status["reason"].isin(list(filters.reasons))
    needle = filters.search.strip()
    if needle:
        number = status["invoice_number"].astype(str).str.contains(needle, case=False, regex=False)
        buyer = (
            status["buyer_name"]
            .fillna("")
            .astype(str)
            .str.contains(needle, case=False, regex=False)
        )
        keep &= number | buyer
    return status[keep]


# --------------------------------------------------------------------------- the table


def _document_cell(frame: pd.DataFrame) -> pd.Series:
    status = as_text(frame["document_status"])
    error = as_text(frame["document_error"])
    cell = pd.Series("… not uploaded yet", index=frame.index, dtype=object)
    cell[status == "uploaded"] = "✓"
    failed = status == "failed"
    cell[failed] = ("✗ " + error[failed]).str.rstrip()
    return cell


def send_cell(status: pd.Series, reason: pd.Series, sent_at: pd.Series) -> pd.Series:
    """One channel's cell, the same symbols for SMS and e-mail: ✓ + sent time (Bangkok),
    ✗ + reason (refused, not sendable, bounced), "… sending", "… retrying: reason",
    "? reason" when nobody knows, "not sent — reason" while waiting."""
    status, reason = as_text(status), as_text(reason)
    when = to_local(sent_at).dt.strftime("%Y-%m-%d %H:%M").fillna("")
    cell = pd.Series("not sent", index=status.index, dtype=object)
    waiting = status == "waiting"
    cell[waiting] = ("not sent — " + reason).where(reason != "", "not sent")[waiting]
    sent = status == "sent"
    cell[sent] = ("✓ " + when[sent]).str.rstrip()
    refused = status.isin(["failed", "not_sent", "bounced"])
    cell[refused] = ("✗ " + reason[refused]).str.rstrip()
    cell[status.isin(["pending", "sending"])] = "… sending"
    retry = status == "retry"
    cell[retry] = ("… retrying: " + reason[retry]).str.rstrip(": ")
    unknown = status == "unknown"
    cell[unknown] = ("? " + reason[unknown]).str.rstrip()
    return cell


def _sms_cell(frame: pd.DataFrame) -> pd.Series:
    return send_cell(frame["sms_status"], frame["reason"], frame["last_sent_at"])


def _email_cell(frame: pd.DataFrame) -> pd.Series:
    """The e-mail's state, then the address masked (``s•••@•••.th``; the view has no
    other form of it): "✓ 2026-12-03 10:11 · s•••@•••.th"."""
    cell = send_cell(
        column(frame, "email_send_status"),
        column(frame, "email_send_reason"),
        column(frame, "last_emailed_at"),
    )
    masked = as_text(column(frame, "email_masked"))
    return (cell + (" · " + masked).where(masked != "", "")).astype(object)


def _delivery_cell(frame: pd.DataFrame) -> pd.Series:
    status = as_text(frame["delivery_status"])
    code = (
        as_text(frame["delivery_error_code"])
        if "delivery_error_code" in frame
        else pd.Series("", index=frame.index)
    )
    suffix = (" (" + code + ")").where(code != "", "")
    cell = status.copy()
    cell[status == "delivered"] = "✓ delivered"
    bad = status.isin(["undelivered", "failed"])
    cell[bad] = "✗ " + status[bad] + suffix[bad]
    return cell


def _payment_cell(frame: pd.DataFrame) -> pd.Series:
    """A cell such as Paid, Unpaid, or "Part paid, 1,234.50 due"."""
    status = as_text(column(frame, "payment_status"))
    due = as_money(column(frame, "amount_due"))
    cell = status.map({"paid": "Paid", "unpaid": "Unpaid", "partial": "Part paid"}).fillna("")
    partial = status == "partial"
    cell[partial] = "Part paid, " + due[partial] + " due"
    return cell.astype(object)


def _reminders_cell(frame: pd.DataFrame) -> pd.Series:
    """A cell such as "2 sent, last 2026-12-17", with "⏸ paused" when stopped."""
    sent = column(frame, "reminders_sent", 0).fillna(0).astype(int)
    last = to_local(column(frame, "last_reminder_at")).dt.strftime("%Y-%m-%d").fillna("")
    paused = column(frame, "reminders_paused", False).fillna(False).astype(bool)
    cell = pd.Series("", index=frame.index, dtype=object)
    some = sent > 0
    cell[some] = sent[some].astype(str) + " sent, last " + last[some]
    cell[paused] = ("⏸ paused · " + cell[paused]).str.rstrip(" ·")
    return cell


def present_table(
    status: pd.DataFrame, limit: int = MAX_TABLE_ROWS, *, email: bool = True
) -> pd.DataFrame:
    """The first ``limit`` rows as a person reads them: symbols and reasons, Bangkok dates,
    masked phones and addresses (``invoice_status`` has no other form of them). Without
    ``email`` (a page where e-mail is not in use) the "E-mail" column is left out."""
    frame = status.head(limit)
    charges = frame["total_charges"].map(lambda v: float(Decimal(str(v))) if pd.notna(v) else 0.0)
    cells = {
        "Invoice": as_text(frame["invoice_number"]),
        "Date": to_local(frame["issued_at"]).dt.strftime("%Y-%m-%d"),
        "Seller": as_text(frame["seller_name"]),
        "Buyer": as_text(frame["buyer_name"]),
        "Amount": as_money(frame["grand_total"]) + " " + as_text(frame["currency"]),
        "Payment": _payment_cell(frame),
        "Phone": as_text(frame["phone_masked"]),
        "Document": _document_cell(frame),
        "SMS": _sms_cell(frame),
        "Delivery": _delivery_cell(frame),
        "Sends": frame["sends"].fillna(0).astype(int),
        "Charges": charges.astype(float),
        "Reminders": _reminders_cell(frame),
    }
    if email:
        cells["E-mail"] = _email_cell(frame)
    columns = [c for c in TABLE_COLUMNS if c in cells]
    return pd.DataFrame(cells, columns=columns).reset_index(drop=True)


def showing_note(shown: int, total: int) -> str:
    if total > shown:
        return f"Showing first {shown:,} of {total:,} invoices (narrow the filters to see others)."
    return f"{total:,} invoice{'s' if total != 1 else ''}."
