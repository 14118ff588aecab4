"""Pull: raw source records -> validated invoices with cleaned phones (pure functions).

Bad records never sink a pull: each becomes a reject naming the invoice and the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from courier.domain import Invoice
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
    frame["source"] = source
    frame["pulled_at"] = now
    frame["updated_at"] = now
    return frame
