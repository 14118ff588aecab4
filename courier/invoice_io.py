"""The canonical invoice record (one JSON object per line) <-> ``Invoice``.

Amounts travel as strings so no float ever touches money. Parsing raises
``InvoiceRecordError`` naming the invoice and the field, so one bad record can be
reported and skipped without sinking its batch.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from courier.domain import (
    NOTE_TYPE_CODES,
    PAYMENT_STATUS_ALIASES,
    PAYMENT_STATUSES,
    Address,
    DocumentReference,
    Invoice,
    InvoiceLine,
    Party,
)


class InvoiceRecordError(ValueError):
    """A source record that cannot become an ``Invoice``."""

    def __init__(self, invoice_number: str, field: str, problem: str) -> None:
        self.invoice_number = invoice_number
        self.field = field
        self.problem = problem
        super().__init__(f"invoice {invoice_number or '?'}: field '{field}': {problem}")


def _decimal(number: str, field: str, value: Any) -> Decimal:
    if isinstance(value, float):
        raise InvoiceRecordError(number, field, "amount must be a string or integer, not a float")
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InvoiceRecordError(number, field, f"not a number: {value!r}") from None
    if not result.is_finite():
        raise InvoiceRecordError(number, field, f"not a finite number: {value!r}")
    return result


def _text(number: str, record: dict[str, Any], key: str, path: str, required: bool = True) -> str:
    value = record.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvoiceRecordError(number, f"{path}{key}", "missing")
        return ""
    return str(value).strip()


def _address(number: str, record: Any, path: str) -> Address:
    if not isinstance(record, dict):
        raise InvoiceRecordError(number, path.rstrip("."), "missing address")
    return Address(
        line1=_text(number, record, "line1", path),
        line2=_text(number, record, "line2", path, required=False),
        city=_text(number, record, "city", path, required=False),
        province=_text(number, record, "province", path, required=False),
        postcode=_text(number, record, "postcode", path, required=False),
        country=_text(number, record, "country", path).upper(),
        province_code=_text(number, record, "province_code", path, required=False),
        district_code=_text(number, record, "district_code", path, required=False),
        subdistrict_code=_text(number, record, "subdistrict_code", path, required=False),
        building_number=_text(number, record, "building_number", path, required=False),
    )


def _party(number: str, record: Any, path: str) -> Party:
    if not isinstance(record, dict):
        raise InvoiceRecordError(number, path.rstrip("."), "missing")
    return Party(
        name=_text(number, record, "name", path),
        address=_address(number, record.get("address"), f"{path}address."),
        tax_id=_text(number, record, "tax_id", path, required=False),
        tax_id_scheme=_text(number, record, "tax_id_scheme", path, required=False) or "TXID",
        branch=_text(number, record, "branch", path, required=False) or "00000",
        email=_text(number, record, "email", path, required=False),
        timezone=_timezone(number, record, path),
    )


def _timezone(number: str, record: dict[str, Any], path: str) -> str:
    name = _text(number, record, "timezone", path, required=False)
    if not name:
        return ""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvoiceRecordError(
            number, f"{path}timezone", f"not an IANA time zone: {name!r} (e.g. Asia/Bangkok)"
        ) from None
    return name


def _instant(number: str, record: dict[str, Any], key: str) -> datetime | None:
    """An optional ISO 8601 date-time with an offset (``paid_at``, ``updated_at``, ...)."""
    raw = _text(number, record, key, "", required=False)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InvoiceRecordError(number, key, "not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise InvoiceRecordError(number, key, "has no time zone offset")
    return moment


def _payment_status(number: str, record: dict[str, Any]) -> str:
    raw = _text(number, record, "payment_status", "", required=False).lower() or "unpaid"
    status = PAYMENT_STATUS_ALIASES.get(raw, raw)
    if status not in PAYMENT_STATUSES:
        raise InvoiceRecordError(
            number,
            "payment_status",
            f"unknown status {raw!r}; one of {', '.join(PAYMENT_STATUSES)} (or partially_paid)",
        )
    return status


def _reference(number: str, record: Any, type_code: str) -> DocumentReference | None:
    """The referenced document; mandatory for debit/credit notes."""
    path = "referenced_document"
    if record is None or record == "" or record == {}:
        if type_code in NOTE_TYPE_CODES:
            raise InvoiceRecordError(
                number,
                path,
                f"missing: a debit/credit note (type code {type_code}) must reference "
                "the original document (number, issue_date, type_code, net_amount)",
            )
        return None
    if not isinstance(record, dict):
        raise InvoiceRecordError(number, path, "not an object")
    raw_date = _text(number, record, "issue_date", f"{path}.")
    try:
        issue_date = date.fromisoformat(raw_date)
    except ValueError:
        try:  # a full timestamp of the original document is fine too: keep its date
            issue_date = datetime.fromisoformat(raw_date).date()
        except ValueError:
            raise InvoiceRecordError(number, f"{path}.issue_date", "not an ISO 8601 date") from None
    net_amount = None
    raw_amount = record.get("net_amount")
    if raw_amount is not None and not (isinstance(raw_amount, str) and not raw_amount.strip()):
        net_amount = _decimal(number, f"{path}.net_amount", raw_amount)
        if net_amount < 0:
            raise InvoiceRecordError(number, f"{path}.net_amount", "must not be negative")
    return DocumentReference(
        number=_text(number, record, "number", f"{path}."),
        issue_date=issue_date,
        type_code=_text(number, record, "type_code", f"{path}.", required=False) or "388",
        net_amount=net_amount,
    )


def invoice_from_dict(record: dict[str, Any]) -> Invoice:
    """Build an ``Invoice`` from a canonical record; raise ``InvoiceRecordError`` if it is bad."""
    number = str(record.get("number") or "").strip()
    if not number:
        raise InvoiceRecordError("", "number", "missing")
    try:
        issued_at = datetime.fromisoformat(_text(number, record, "issued_at", ""))
    except ValueError:
        raise InvoiceRecordError(number, "issued_at", "not an ISO 8601 date-time") from None
    if issued_at.tzinfo is None:
        raise InvoiceRecordError(number, "issued_at", "has no time zone offset")
    try:
        due_date = date.fromisoformat(_text(number, record, "due_date", ""))
    except ValueError:
        raise InvoiceRecordError(number, "due_date", "not an ISO 8601 date") from None
    raw_lines = record.get("lines")
    if not isinstance(raw_lines, list) or not raw_lines:
        raise InvoiceRecordError(number, "lines", "an invoice needs at least one line")
    lines = []
    for index, raw in enumerate(raw_lines, start=1):
        path = f"lines[{index}]."
        if not isinstance(raw, dict):
            raise InvoiceRecordError(number, path.rstrip("."), "not an object")
        lines.append(
            InvoiceLine(
                line_id=int(raw.get("line_id") or index),
                product_id=_text(number, raw, "product_id", path, required=False) or str(index),
                description=_text(number, raw, "description", path),
                quantity=_decimal(number, f"{path}quantity", raw.get("quantity")),
                unit_price=_decimal(number, f"{path}unit_price", raw.get("unit_price")),
                unit_code=_text(number, raw, "unit_code", path, required=False) or "EA",
            )
        )
    buyer = record.get("buyer")
    phone = buyer.get("phone") if isinstance(buyer, dict) else None
    type_code = _text(number, record, "type_code", "", required=False) or "388"
    referenced_document = _reference(number, record.get("referenced_document"), type_code)
    amount_paid = Decimal("0.00")
    raw_paid = record.get("amount_paid")
    if raw_paid is not None and not (isinstance(raw_paid, str) and not raw_paid.strip()):
        amount_paid = _decimal(number, "amount_paid", raw_paid)
        if amount_paid < 0:
            raise InvoiceRecordError(number, "amount_paid", "must not be negative")
    return Invoice(
        number=number,
        seller=_party(number, record.get("seller"), "seller."),
        buyer=_party(number, buyer, "buyer."),
        buyer_phone_raw="" if phone is None else str(phone),
        issued_at=issued_at,
        due_date=due_date,
        currency=_text(number, record, "currency", "").upper(),
        vat_rate=_decimal(number, "vat_rate", record.get("vat_rate")),
        lines=tuple(lines),
        payment_status=_payment_status(number, record),
        amount_paid=amount_paid,
        paid_at=_instant(number, record, "paid_at"),
        created_at=_instant(number, record, "created_at"),
        updated_at=_instant(number, record, "updated_at"),
        type_code=type_code,
        referenced_document=referenced_document,
        purpose_code=_text(number, record, "purpose_code", "", required=False).upper(),
        purpose=_text(number, record, "purpose", "", required=False),
    )


def _address_dict(address: Address) -> dict[str, str]:
    return {
        "line1": address.line1,
        "line2": address.line2,
        "city": address.city,
        "province": address.province,
        "postcode": address.postcode,
        "country": address.country,
        "province_code": address.province_code,
        "district_code": address.district_code,
        "subdistrict_code": address.subdistrict_code,
        "building_number": address.building_number,
    }


def _reference_dict(reference: DocumentReference | None) -> dict[str, Any] | None:
    if reference is None:
        return None
    return {
        "number": reference.number,
        "issue_date": reference.issue_date.isoformat(),
        "type_code": reference.type_code,
        "net_amount": None if reference.net_amount is None else str(reference.net_amount),
    }


def _party_dict(party: Party) -> dict[str, Any]:
    result: dict[str, Any] = {
        "name": party.name,
        "tax_id": party.tax_id,
        "tax_id_scheme": party.tax_id_scheme,
        "branch": party.branch,
        "email": party.email,
        "address": _address_dict(party.address),
    }
    if party.timezone:
        result["timezone"] = party.timezone
    return result


def invoice_to_dict(invoice: Invoice) -> dict[str, Any]:
    """The canonical record of an ``Invoice`` (inverse of ``invoice_from_dict``)."""
    buyer = _party_dict(invoice.buyer)
    buyer["phone"] = invoice.buyer_phone_raw
    # Payment and ERP times only when set, so records of earlier exports read the same.
    optional: dict[str, Any] = {}
    if invoice.amount_paid:
        optional["amount_paid"] = str(invoice.amount_paid)
    for key in ("paid_at", "created_at", "updated_at"):
        moment = getattr(invoice, key)
        if moment is not None:
            optional[key] = moment.isoformat()
    return {
        "number": invoice.number,
        "type_code": invoice.type_code,
        "issued_at": invoice.issued_at.isoformat(),
        "due_date": invoice.due_date.isoformat(),
        "currency": invoice.currency,
        "vat_rate": str(invoice.vat_rate),
        "payment_status": invoice.payment_status,
        **optional,
        "referenced_document": _reference_dict(invoice.referenced_document),
        "purpose_code": invoice.purpose_code,
        "purpose": invoice.purpose,
        "seller": _party_dict(invoice.seller),
        "buyer": buyer,
        "lines": [
            {
                "line_id": line.line_id,
                "product_id": line.product_id,
                "description": line.description,
                "quantity": str(line.quantity),
                "unit_price": str(line.unit_price),
                "unit_code": line.unit_code,
            }
            for line in invoice.lines
        ],
    }
