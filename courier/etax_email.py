"""ETDA's "e-Tax Invoice by e-mail" (the time-stamp scheme): which documents it covers and
the subject each must carry (pure).

A seller in the scheme e-mails the PDF/A-3 (its XML inside) From the address it
registered, To the buyer, with a copy to ETDA's time-stamp mailbox; the service stamps the
document and mails it back to both. The README's "e-Tax Invoice by e-mail" section lists
the rules a seller must follow, and which of them Courier enforces.
"""

from __future__ import annotations

from typing import Final

from courier.domain import Invoice

#: Document type code -> the document's name the subject starts with (Thai / English).
SUBJECT_NAMES: Final[dict[str, str]] = {
    "388": "ใบกำกับภาษี / Tax Invoice",
    "T02": "ใบแจ้งหนี้/ใบกำกับภาษี / Invoice/Tax Invoice",
    "T03": "ใบเสร็จรับเงิน/ใบกำกับภาษี / Receipt/Tax Invoice",
    "T04": "ใบส่งของ/ใบกำกับภาษี / Delivery Order/Tax Invoice",
    "T01": "ใบรับ / Receipt",
    "80": "ใบเพิ่มหนี้ / Debit Note",
    "81": "ใบลดหนี้ / Credit Note",
}


def etax_covers(type_code: str) -> bool:
    """The scheme covers tax invoices, receipts, and debit and credit notes; not the
    abbreviated tax invoice (T05, T06), which is not sent to a named buyer this way."""
    return type_code in SUBJECT_NAMES


def etax_subject(invoice: Invoice) -> str:
    """The subject: the document's name, then its number (one document per e-mail)."""
    return f"{SUBJECT_NAMES[invoice.type_code]} {invoice.number}"
