"""What the "Send to Buyer" dashboard shows, as pure functions over DataFrames and values.

No Streamlit here: the dashboard (``dashboard/``) only lays these results out, so every
rule a person relies on — which rows a filter keeps, how a status reads, what "Send All"
will send and what it will cost — is unit-tested without a browser.

* Table: ``apply_filters`` (vectorised; fine on 100k rows) and ``present_table`` (only the
  rows actually displayed are formatted).
* Edit phone: ``check_phone`` — the pipeline's own rules (``courier.phones.clean_phone``).
* Send All: ``preview_send_all`` — who is texted, who is skipped and why, encoding,
  segments and cost per country, built with the very intent code the sender uses
  (``courier.planning``), so the charges after sending equal the preview.
* Analytics: ``delivery_funnel``, ``failures_by_reason``, ``charges_by``, ``run_history``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Literal

import pandas as pd

from courier.messages import (
    PriceTable,
    TemplateError,
    count_segments,
    ucs2_forcing_chars,
    validate_template,
)
from courier.phones import REASON_MISSING, PhoneResult, clean_phone, mask_phone
from courier.planning import (
    REASON_OPTED_OUT,
    Intent,
    SendingHours,
    intents_for,
    manual_purpose,
    plan_on_issue,
)

#: Dates and times on screen (and "today" for "already sent today") are Bangkok time,
#: where the finance team works.
DISPLAY_TZ: Final = "Asia/Bangkok"
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

#: The table's columns, in order.
TABLE_COLUMNS: Final = (
    "Invoice",
    "Date",
    "Seller",
    "Buyer",
    "Amount",
    "Phone",
    "Document",
    "SMS",
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


@dataclass(frozen=True)
class FilterOptions:
    first_day: date | None
    last_day: date | None
    sellers: list[str]
    reasons: list[str]
    sms_statuses: list[str] = field(default_factory=lambda: list(SMS_STATUS_LABELS))


def _local(series: pd.Series) -> pd.Series:
    """Timestamps (any tz, or naive UTC) as Bangkok time."""
    return pd.to_datetime(series, utc=True).dt.tz_convert(DISPLAY_TZ)


def filter_options(status: pd.DataFrame) -> FilterOptions:
    """The choices the filters offer for these invoices."""
    if status.empty:
        return FilterOptions(None, None, [], [])
    issued = _local(status["issued_at"])
    reasons = status["reason"].dropna().astype(str)
    return FilterOptions(
        first_day=issued.min().date(),
        last_day=issued.max().date(),
        sellers=sorted(status["seller_name"].dropna().astype(str).unique()),
        reasons=sorted(reasons[reasons != ""].unique()),
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


def _text(series: pd.Series) -> pd.Series:
    return series.fillna("").astype(str)


def _document_cell(frame: pd.DataFrame) -> pd.Series:
    status = _text(frame["document_status"])
    error = _text(frame["document_error"])
    cell = pd.Series("… not uploaded yet", index=frame.index, dtype=object)
    cell[status == "uploaded"] = "✓"
    failed = status == "failed"
    cell[failed] = ("✗ " + error[failed]).str.rstrip()
    return cell


def _sms_cell(frame: pd.DataFrame) -> pd.Series:
    status = _text(frame["sms_status"])
    reason = _text(frame["reason"])
    sent_at = _local(frame["last_sent_at"]).dt.strftime("%Y-%m-%d %H:%M").fillna("")
    cell = pd.Series("not sent", index=frame.index, dtype=object)
    with_reason = ("not sent — " + reason).where(reason != "", "not sent")
    cell[status == "waiting"] = with_reason[status == "waiting"]
    sent = status == "sent"
    cell[sent] = ("✓ " + sent_at[sent]).str.rstrip()
    refused = status.isin(["failed", "not_sent"])
    cell[refused] = ("✗ " + reason[refused]).str.rstrip()
    cell[status == "pending"] = "… sending"
    retry = status == "retry"
    cell[retry] = ("… retrying: " + reason[retry]).str.rstrip(": ")
    unknown = status == "unknown"
    cell[unknown] = ("? " + reason[unknown]).str.rstrip()
    return cell


def _delivery_cell(frame: pd.DataFrame) -> pd.Series:
    status = _text(frame["delivery_status"])
    code = (
        _text(frame["delivery_error_code"])
        if "delivery_error_code" in frame
        else pd.Series("", index=frame.index)
    )
    suffix = (" (" + code + ")").where(code != "", "")
    cell = status.copy()
    cell[status == "delivered"] = "✓ delivered"
    bad = status.isin(["undelivered", "failed"])
    cell[bad] = "✗ " + status[bad] + suffix[bad]
    return cell


def _column(frame: pd.DataFrame, name: str, default: object = None) -> pd.Series:
    """``frame[name]``, or ``default`` everywhere for a snapshot older than the column."""
    if name in frame:
        return frame[name]
    return pd.Series(default, index=frame.index, dtype=object)


def _payment_cell(frame: pd.DataFrame) -> pd.Series:
    """A cell such as Paid, Unpaid, or "Part paid, 1,234.50 due"."""
    status = _text(_column(frame, "payment_status"))
    due = _money(_column(frame, "amount_due"))
    cell = status.map({"paid": "Paid", "unpaid": "Unpaid", "partial": "Part paid"}).fillna("")
    partial = status == "partial"
    cell[partial] = "Part paid, " + due[partial] + " due"
    return cell.astype(object)


def _reminders_cell(frame: pd.DataFrame) -> pd.Series:
    """A cell such as "2 sent, last 2026-12-17", with "⏸ paused" when stopped."""
    sent = _column(frame, "reminders_sent", 0).fillna(0).astype(int)
    last = _local(_column(frame, "last_reminder_at")).dt.strftime("%Y-%m-%d").fillna("")
    paused = _column(frame, "reminders_paused", False).fillna(False).astype(bool)
    cell = pd.Series("", index=frame.index, dtype=object)
    some = sent > 0
    cell[some] = sent[some].astype(str) + " sent, last " + last[some]
    cell[paused] = ("⏸ paused · " + cell[paused]).str.rstrip(" ·")
    return cell


def _money(values: pd.Series) -> pd.Series:
    return values.map(lambda v: f"{Decimal(str(v)):,.2f}" if pd.notna(v) else "").astype(object)


def present_table(status: pd.DataFrame, limit: int = MAX_TABLE_ROWS) -> pd.DataFrame:
    """The first ``limit`` rows as a person reads them: symbols and reasons, Bangkok dates,
    masked phones (``invoice_status`` has no other form of the number)."""
    frame = status.head(limit)
    charges = frame["total_charges"].map(lambda v: float(Decimal(str(v))) if pd.notna(v) else 0.0)
    return pd.DataFrame(
        {
            "Invoice": _text(frame["invoice_number"]),
            "Date": _local(frame["issued_at"]).dt.strftime("%Y-%m-%d"),
            "Seller": _text(frame["seller_name"]),
            "Buyer": _text(frame["buyer_name"]),
            "Amount": _money(frame["grand_total"]) + " " + _text(frame["currency"]),
            "Payment": _payment_cell(frame),
            "Phone": _text(frame["phone_masked"]),
            "Document": _document_cell(frame),
            "SMS": _sms_cell(frame),
            "Delivery": _delivery_cell(frame),
            "Sends": frame["sends"].fillna(0).astype(int),
            "Charges": charges.astype(float),
            "Reminders": _reminders_cell(frame),
        },
        columns=list(TABLE_COLUMNS),
    ).reset_index(drop=True)


def showing_note(shown: int, total: int) -> str:
    if total > shown:
        return f"Showing first {shown:,} of {total:,} invoices (narrow the filters to see others)."
    return f"{total:,} invoice{'s' if total != 1 else ''}."


# --------------------------------------------------------------------------- edit phone


@dataclass(frozen=True)
class PhoneCheck:
    """A typed number judged by the pipeline's rules; ``message`` says what is wrong."""

    result: PhoneResult
    ok: bool
    message: str
    masked: str


def check_phone(raw: str, region: str) -> PhoneCheck:
    """Is ``raw`` one number that can receive SMS (``clean_phone``, buyer's ``region``)?"""
    result = clean_phone(raw, region)
    message = "" if result.textable else result.reason or REASON_MISSING
    return PhoneCheck(result, result.textable, message, mask_phone(result.e164 or raw))


# --------------------------------------------------------------------------- Send All

SkipKey = Literal[
    "missing",
    "invalid",
    "not_mobile",
    "no_document",
    "opted_out",
    "sent_today",
    "outside_hours",
    "already_requested",
]

#: Why an invoice of the selection gets no SMS, in the order the checks run.
SKIP_LABELS: Final[Mapping[SkipKey, str]] = {
    "missing": "No telephone number",
    "invalid": "Invalid telephone number",
    "not_mobile": "Not a mobile number",
    "no_document": "Documents not stored",
    "opted_out": "Buyer opted out (STOP)",
    "sent_today": "Already sent today",
    "outside_hours": "Outside the buyer's sending hours",
    "already_requested": "Already sent by this request",
}


@dataclass(frozen=True)
class SendAllPreview:
    """What "Send All by SMS" will do, before it does it."""

    request_id: str
    template: str | None
    selected: int
    recipients: list[str]  # invoice numbers that will be texted
    intents: list[Intent]
    skipped: dict[SkipKey, list[str]]  # reason -> invoice numbers, only non-empty ones
    by_encoding: pd.DataFrame  # encoding, segments (per message), messages
    by_country: pd.DataFrame  # country, messages, segments, unit_price, amount, currency
    total: Decimal
    currency: str
    budget: Decimal | None
    ucs2_chars: list[str]  # characters of the messages that force UCS-2
    template_error: str | None = None

    @property
    def within_budget(self) -> bool:
        return self.budget is None or self.total <= self.budget

    @property
    def can_send(self) -> bool:
        return bool(self.recipients) and self.within_budget and self.template_error is None

    @property
    def skipped_counts(self) -> dict[str, int]:
        return {SKIP_LABELS[key]: len(numbers) for key, numbers in self.skipped.items()}

    @property
    def segments(self) -> int:
        return sum(i.segments for i in self.intents)


def _empty_preview(
    request_id: str,
    template: str | None,
    selected: int,
    skipped: dict[SkipKey, list[str]],
    currency: str,
    budget: Decimal | None,
    error: str | None = None,
) -> SendAllPreview:
    return SendAllPreview(
        request_id=request_id,
        template=template,
        selected=selected,
        recipients=[],
        intents=[],
        skipped=skipped,
        by_encoding=pd.DataFrame(columns=["encoding", "segments", "messages"]),
        by_country=pd.DataFrame(
            columns=["country", "messages", "segments", "unit_price", "amount", "currency"]
        ),
        total=Decimal(0),
        currency=currency,
        budget=budget,
        ucs2_chars=[],
        template_error=error,
    )


def preview_send_all(
    candidates: pd.DataFrame,
    messages: pd.DataFrame,
    prices: PriceTable,
    *,
    request_id: str,
    requested_by: str,
    now: datetime,
    template: str | None = None,
    opted_out: Iterable[str] = (),
    hours: SendingHours | None = None,
    language: str = "auto",
    budget: Decimal | None = None,
) -> SendAllPreview:
    """Who "Send All" texts, who it skips and why, and exactly what it costs.

    ``candidates`` is ``Ledger.send_all_candidates(selection)`` (the selected invoices with
    phone, documents, ``pdf_url``, ``last_sent_at``); ``messages`` is
    ``Ledger.message_keys()``. Skips are counted in the order of ``SKIP_LABELS``. The
    recipients' intents come from ``courier.planning`` — the sender's own code, with the
    same purpose (``manual:<request_id>``), template, language and sending hours — so
    segments and prices are the ones that will be charged.

    Each SMS carries the link minted at send time (``courier.jobs.send_manual`` uploads the
    document again). It is measured here on the invoice's current ``pdf_url``: the document
    store mints every link as ``<base URL>/d/<token>`` with a fixed-length token, so a fresh
    link has exactly the same length and the segment count cannot change.
    """
    selected = len(candidates)
    if template is not None and not template.strip():
        template = None
    if template is not None:
        try:
            validate_template(template)
        except TemplateError as error:
            return _empty_preview(
                request_id, template, selected, {}, prices.currency, budget, str(error)
            )

    rest = candidates
    skipped: dict[SkipKey, list[str]] = {}

    def skip(key: SkipKey, mask: pd.Series) -> None:
        nonlocal rest
        numbers = rest.loc[mask, "invoice_number"].astype(str).tolist()
        if numbers:
            skipped[key] = numbers
        rest = rest[~mask]

    skip("missing", rest["phone_status"] == "missing")
    skip("invalid", rest["phone_status"] == "invalid")
    skip("not_mobile", rest["phone_status"] != "ok")
    skip("no_document", (rest["uploaded_documents"] < 2) | rest["pdf_url"].isna())
    opted = set(opted_out)
    skip("opted_out", rest["phone_e164"].isin(list(opted)))
    sent_at = _local(rest["last_sent_at"])
    today = pd.Timestamp(now).tz_convert(DISPLAY_TZ).normalize()
    skip("sent_today", (sent_at >= today) & (sent_at < today + pd.Timedelta(days=1)))

    purpose = manual_purpose(request_id)
    plan = plan_on_issue(rest, messages, opted, now=now, hours=hours, purpose=purpose)
    held_hours = [n for n, why in plan.held.items() if why != REASON_OPTED_OUT]
    if held_hours:
        skipped["outside_hours"] = held_hours
    requested = set(
        messages.loc[messages["purpose"] == purpose, "invoice_number"].astype(str)
    ) & set(rest["invoice_number"].astype(str))
    if requested:
        skipped["already_requested"] = sorted(requested)
    intents = intents_for(
        plan.due,
        prices,
        language=language,
        purpose=purpose,
        requested_by=requested_by,
        template=template,
    )
    if not intents:
        return _empty_preview(request_id, template, selected, skipped, prices.currency, budget)
    rows = pd.DataFrame(
        {
            "country": [i.destination_country for i in intents],
            "encoding": [i.encoding for i in intents],
            "segments": [i.segments for i in intents],
            "unit_price": [i.unit_price for i in intents],
            "amount": [i.amount for i in intents],
            "currency": [i.currency for i in intents],
        }
    )
    by_encoding = (
        rows.groupby(["encoding", "segments"], as_index=False)
        .size()
        .rename(columns={"size": "messages"})
    )
    by_country = (
        rows.groupby(["country", "unit_price", "currency"], as_index=False)
        .agg(
            messages=("segments", "size"),
            segments=("segments", "sum"),
            amount=("amount", lambda a: sum(a, Decimal(0))),
        )
        .loc[:, ["country", "messages", "segments", "unit_price", "amount", "currency"]]
    )
    forcing: dict[str, None] = {}
    for intent in intents:
        if intent.encoding == "UCS-2":
            forcing.update(dict.fromkeys(ucs2_forcing_chars(intent.body)))
    return SendAllPreview(
        request_id=request_id,
        template=template,
        selected=selected,
        recipients=[i.invoice_number for i in intents],
        intents=intents,
        skipped=skipped,
        by_encoding=by_encoding,
        by_country=by_country,
        total=sum((i.amount for i in intents), Decimal(0)),
        currency=intents[0].currency,
        budget=budget,
        ucs2_chars=list(forcing),
    )


@dataclass(frozen=True)
class TemplateCheck:
    error: str | None
    encoding: str
    segments: int  # of the template text alone (placeholders still in it)
    ucs2_chars: list[str]
    highlighted_html: str


def check_template(template: str) -> TemplateCheck:
    """A template as typed: its error (if any), and the characters that force UCS-2
    highlighted (``<mark>``) in an HTML-escaped copy of the text."""
    error = None
    try:
        validate_template(template)
    except TemplateError as exc:
        error = str(exc)
    info = count_segments(template)
    return TemplateCheck(
        error=error,
        encoding=info.encoding,
        segments=info.segments,
        ucs2_chars=ucs2_forcing_chars(template),
        highlighted_html=highlight_ucs2(template),
    )


def highlight_ucs2(text: str) -> str:
    """``text`` HTML-escaped, each character outside GSM-7 wrapped in ``<mark>``."""
    forcing = set(ucs2_forcing_chars(text))
    return "".join(
        f"<mark>{html.escape(ch)}</mark>" if ch in forcing else html.escape(ch) for ch in text
    )


def char_names(chars: Sequence[str]) -> str:
    """``ก (U+0E01), ฿ (U+0E3F)`` — shown next to the highlighted text."""
    return ", ".join(
        f"{ch if ch.isprintable() and not ch.isspace() else ' '} (U+{ord(ch):04X})" for ch in chars
    )


# --------------------------------------------------------------------------- analytics

FUNNEL_STAGES: Final = ("Pulled", "Valid phone", "Uploaded", "Sent", "Delivered")


def delivery_funnel(status: pd.DataFrame) -> pd.DataFrame:
    """Invoices reaching each stage; each stage counts only those that passed the ones before."""
    valid = status["phone_status"] == "ok"
    uploaded = valid & (status["document_status"] == "uploaded")
    sent = uploaded & (status["sms_status"] == "sent")
    delivered = sent & (status["delivery_status"] == "delivered")
    counts = [len(status), int(valid.sum()), int(uploaded.sum()), int(sent.sum())]
    counts.append(int(delivered.sum()))
    return pd.DataFrame({"stage": list(FUNNEL_STAGES), "invoices": counts})


def failures_by_reason(status: pd.DataFrame) -> pd.DataFrame:
    """Invoices not (yet) sent, by the reason a person reads; most frequent first."""
    reason = _text(status["reason"])
    failing = status[(status["sms_status"] != "sent") & (reason != "")]
    counts = failing.groupby("reason").size().sort_values(ascending=False, kind="stable")
    return pd.DataFrame({"reason": counts.index.astype(str), "invoices": counts.to_numpy()})


ChargeGrouping = Literal["day", "month", "seller", "country"]


def charges_by(charges: pd.DataFrame, by: ChargeGrouping) -> pd.DataFrame:
    """SMS charges per day / month (Bangkok time), seller or destination country:
    ``<by>, currency, messages, segments, amount`` with ``amount`` an exact ``Decimal``."""
    frame = charges.copy()
    if by in ("day", "month"):
        local = _local(frame["charged_at"])
        frame[by] = local.dt.strftime("%Y-%m-%d" if by == "day" else "%Y-%m")
    elif by == "seller":
        frame[by] = _text(frame["seller_name"])
    else:
        frame[by] = _text(frame["destination_country"])
    if frame.empty:
        return pd.DataFrame(columns=[by, "currency", "messages", "segments", "amount"])
    frame["amount"] = frame["amount"].map(lambda v: Decimal(str(v)))
    grouped = frame.groupby([by, "currency"], as_index=False).agg(
        messages=("amount", "size"),
        segments=("segments", "sum"),
        amount=("amount", lambda a: sum(a, Decimal(0))),
    )
    return grouped.sort_values(by, kind="stable").reset_index(drop=True)


def as_chart(table: pd.DataFrame, key: str) -> pd.DataFrame:
    """A ``charges_by`` table for ``st.bar_chart``/``st.line_chart`` (floats, one column
    per currency, indexed by ``key``). Charts only: totals stay exact in the tables."""
    if table.empty:
        return pd.DataFrame()
    values = table.assign(amount=table["amount"].map(float))
    return values.pivot_table(index=key, columns="currency", values="amount", aggfunc="sum")


def prefect_ui_base(env: Mapping[str, str]) -> str | None:
    """The Prefect UI's base URL: ``PREFECT_UI_URL``, else ``PREFECT_API_URL`` without
    its ``/api`` suffix; None when neither is set (an ephemeral server has no UI to link)."""
    ui = env.get("PREFECT_UI_URL", "").strip()
    if ui:
        return ui.rstrip("/")
    api = env.get("PREFECT_API_URL", "").strip().rstrip("/")
    if api:
        return api.removesuffix("/api")
    return None


def _summary(text: Any) -> dict[str, Any]:
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def run_history(runs: pd.DataFrame, ui_base: str | None) -> pd.DataFrame:
    """One row per run, newest first, with a link to the run in the Prefect UI."""
    columns = ["Started", "Flow", "Finished", "Result", "SMS sent", "Charges", "Run", "Prefect"]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    frame = runs.assign(_started=pd.to_datetime(runs["started_at"], utc=True)).sort_values(
        "_started", ascending=False, kind="stable"
    )
    summaries = [_summary(s) for s in frame.get("summary_json", pd.Series(dtype=object))]

    def result(summary: dict[str, Any]) -> str:
        inner = summary.get("result")
        if isinstance(inner, dict):
            if inner.get("refused"):
                return f"refused: {inner['refused']}"
            if inner.get("error"):
                return f"error: {inner['error']}"
            counts = {k: v for k, v in inner.items() if isinstance(v, int)}
            return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        if summary.get("refused"):
            return f"refused: {summary['refused']}"
        outcomes = summary.get("sms_outcomes")
        if isinstance(outcomes, dict):
            return ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) or "nothing to send"
        return ""

    finished = pd.to_datetime(frame["finished_at"], utc=True).dt.tz_convert(DISPLAY_TZ)
    run_ids = frame["run_id"].astype(str)
    return pd.DataFrame(
        {
            "Started": frame["_started"].dt.tz_convert(DISPLAY_TZ).dt.strftime("%Y-%m-%d %H:%M"),
            "Flow": _text(frame["flow"]),
            "Finished": finished.dt.strftime("%Y-%m-%d %H:%M").fillna("running or died"),
            "Result": [result(s) for s in summaries],
            "SMS sent": [int(s.get("run_sms_sent", 0) or 0) for s in summaries],
            "Charges": [str(s.get("run_charges", "")) for s in summaries],
            "Run": run_ids,
            "Prefect": (
                [f"{ui_base}/runs/flow-run/{r}" for r in run_ids]
                if ui_base
                else [None] * len(run_ids)
            ),
        },
        columns=columns,
    ).reset_index(drop=True)


def to_csv(frame: pd.DataFrame) -> bytes:
    """CSV for "Download CSV": exact decimals (``Decimal`` is written as its text)."""
    return frame.to_csv(index=False).encode("utf-8")
