"""Pull: raw source records -> validated invoices with cleaned phones (pure functions).

Bad records never sink a pull: each becomes a reject naming the invoice and the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd

from courier.domain import Invoice
from courier.emails import clean_email, mask_email
from courier.invoice_io import InvoiceRecordError, invoice_from_dict, invoice_to_dict
from courier.phones import clean_phones, mask_phone

#: How far back an incremental pull looks before the newest invoice already seen, so an
#: invoice the ERP back-dates a little is still picked up (duplicates drop by number).
INCREMENTAL_OVERLAP = timedelta(days=2)


@dataclass
class ParsedBatch:
    invoices: list[Invoice] = field(default_factory=list)
    rejects: list[dict[str, str]] = field(default_factory=list)


def parse_records(records: Iterable[dict[str, Any]]) -> ParsedBatch:
    """Turn raw records into invoices; collect a reject (with its reason) for each bad one."""
    batch = ParsedBatch()
    seen: set[str] = set()
    for record in records:
        raw = json.dumps(record, ensure_ascii=False, default=str)[:10_000]
        if "_error" in record:
            batch.rejects.append(
                {
                    "record_key": str(record.get("number", "?")),
                    "field": "record",
                    "problem": str(record["_error"]),
                    "raw_record": str(record.get("_raw", raw)),
                }
            )
            continue
        try:
            invoice = invoice_from_dict(record)
        except InvoiceRecordError as error:
            batch.rejects.append(
                {
                    "record_key": error.invoice_number or "?",
                    "field": error.field,
                    "problem": error.problem,
                    "raw_record": raw,
                }
            )
            continue
        if invoice.number in seen:
            batch.rejects.append(
                {
                    "record_key": invoice.number,
                    "field": "number",
                    "problem": "duplicate invoice number in the same pull (first one kept)",
                    "raw_record": raw,
                }
            )
            continue
        seen.add(invoice.number)
        batch.invoices.append(invoice)
    return batch


def incremental_since(latest_seen: datetime | None) -> datetime | None:
    return None if latest_seen is None else latest_seen - INCREMENTAL_OVERLAP


def invoice_rows(invoices: list[Invoice], source: str, now: datetime) -> pd.DataFrame:
    """One ledger row per invoice, phones cleaned (each distinct raw value parsed once)."""
    frame = pd.DataFrame(
        {
            "invoice_number": [i.number for i in invoices],
            "type_code": [i.type_code for i in invoices],
            "seller_name": [i.seller.name for i in invoices],
            "seller_tax_id": [i.seller.tax_id for i in invoices],
            "seller_country": [i.seller.country for i in invoices],
            "buyer_name": [i.buyer.name for i in invoices],
            "buyer_country": [i.buyer.country for i in invoices],
            "issued_at": [i.issued_at for i in invoices],
            "due_date": [i.due_date for i in invoices],
            "currency": [i.currency for i in invoices],
            # Money goes to DuckDB as exact strings, cast by the DECIMAL columns.
            "vat_rate": [str(i.vat_rate) for i in invoices],
            "line_total": [str(i.line_total) for i in invoices],
            "vat_amount": [str(i.vat_amount) for i in invoices],
            "grand_total": [str(i.grand_total) for i in invoices],
            "payment_status": [i.payment_status for i in invoices],
            "amount_paid": [str(i.amount_paid) for i in invoices],
            "paid_at": [first_paid_at(i, None) for i in invoices],
            "erp_created_at": [i.created_at for i in invoices],
            "erp_updated_at": [i.updated_at for i in invoices],
            "seller_timezone": [i.seller.timezone for i in invoices],
            "buyer_key": [i.buyer.key for i in invoices],
            "phone_raw": [i.buyer_phone_raw for i in invoices],
            "record_json": [json.dumps(invoice_to_dict(i), ensure_ascii=False) for i in invoices],
        }
    )
    phones = clean_phones(frame, raw_col="phone_raw", region_col="buyer_country")
    frame = frame.join(phones)
    frame["phone_masked"] = [
        mask_phone(e164 if isinstance(e164, str) and e164 else raw)
        for e164, raw in zip(frame["phone_e164"], frame["phone_raw"], strict=True)
    ]
    emails = [clean_email(i.buyer.email) for i in invoices]
    frame["email_raw"] = [i.buyer.email for i in invoices]
    frame["buyer_email"] = [e.address for e in emails]
    frame["email_status"] = [e.status for e in emails]
    frame["email_reason"] = [e.reason for e in emails]
    frame["email_masked"] = [
        mask_email(e.address or i.buyer.email) for e, i in zip(emails, invoices, strict=True)
    ]
    frame["source"] = source
    frame["pulled_at"] = now
    frame["updated_at"] = now
    return frame


def first_paid_at(invoice: Invoice, seen_at: datetime | None) -> datetime | None:
    """When a paid invoice became paid: the ERP's ``paid_at``, else its last change, else
    ``seen_at`` (the pull that found it paid) or, for an invoice paid when first pulled,
    its issue time. None while unpaid."""
    if invoice.payment_status != "paid":
        return None
    return invoice.paid_at or invoice.updated_at or seen_at or invoice.issued_at


#: What a pull keeps current in an invoice it already has (the document itself never
#: changes once issued: a correction is a credit or debit note).
TRACKED_FIELDS = ("payment_status", "amount_paid", "due_date")


@dataclass(frozen=True)
class InvoiceUpdate:
    """A known invoice whose payment status, amount paid or due date the ERP changed."""

    invoice_number: str
    payment_status: str
    amount_paid: Decimal
    due_date: date
    paid_at: datetime | None
    erp_updated_at: datetime | None
    changes: tuple[tuple[str, str, str], ...]  # (field, old value, new value)


def invoice_updates(
    known: pd.DataFrame, invoices: Iterable[Invoice], now: datetime
) -> list[InvoiceUpdate]:
    """Compare pulled invoices with what the ledger has (``Ledger.tracked_state``): one
    update per invoice whose tracked fields changed, naming each change."""
    if known.empty:
        return []
    state = {str(row.invoice_number): row for row in known.itertuples(index=False)}
    updates: list[InvoiceUpdate] = []
    for invoice in invoices:
        row = state.get(invoice.number)
        if row is None:
            continue
        old = {
            "payment_status": str(row.payment_status),
            "amount_paid": _money_text(row.amount_paid),
            "due_date": _date_text(row.due_date),
        }
        new = {
            "payment_status": invoice.payment_status,
            "amount_paid": _money_text(invoice.amount_paid),
            "due_date": invoice.due_date.isoformat(),
        }
        changes = tuple((f, old[f], new[f]) for f in TRACKED_FIELDS if old[f] != new[f])
        if not changes:
            continue
        was_paid = old["payment_status"] == "paid"
        paid_at = _instant_or_none(row.paid_at) if was_paid else first_paid_at(invoice, now)
        if invoice.payment_status != "paid":
            paid_at = None
        updates.append(
            InvoiceUpdate(
                invoice_number=invoice.number,
                payment_status=invoice.payment_status,
                amount_paid=invoice.amount_paid,
                due_date=invoice.due_date,
                paid_at=paid_at,
                erp_updated_at=invoice.updated_at,
                changes=changes,
            )
        )
    return updates


def _money_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "0.00"
    return f"{Decimal(str(value)):.2f}"


def _date_text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return pd.Timestamp(value).date().isoformat()


def _instant_or_none(value: Any) -> datetime | None:
    if value is None or value is pd.NaT or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value if isinstance(value, datetime) else None
