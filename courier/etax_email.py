"""ETDA's "e-Tax Invoice by e-mail" (the time-stamp scheme, now also called "e-Tax Invoice
by Time Stamp"): which documents it covers and the subject each must carry (pure).

A seller in the scheme e-mails the PDF/A-3 (its XML inside) From the address it
registered with the Revenue Department (form ก.อ.01), To the buyer, Cc ETDA's time-stamp
mailbox, one document per e-mail; the service stamps the document and mails it back to
both. The README's "e-Tax Invoice by e-mail" section lists the rules and which of them
Courier enforces.
"""

from __future__ import annotations

from typing import Final

from courier.domain import CREDIT_NOTE_TYPE_CODE, DEBIT_NOTE_TYPE_CODE, Invoice

#: Document type code -> the subject's type field. Tax invoices in all their forms
#: (388, invoice/tax invoice T02, receipt/tax invoice T03, delivery order/tax invoice T04)
#: are INV; debit and credit notes DBN and CRN. A receipt alone (T01) and the abbreviated
#: tax invoice (T05, T06) belong to the other scheme (e-Tax Invoice & e-Receipt).
SUBJECT_TYPES: Final[dict[str, str]] = {
    "388": "INV",
    "T02": "INV",
    "T03": "INV",
    "T04": "INV",
    DEBIT_NOTE_TYPE_CODE: "DBN",
    CREDIT_NOTE_TYPE_CODE: "CRN",
}
#: The largest attachment the time-stamp service takes.
MAX_ATTACHMENT_BYTES: Final = 3 * 1024 * 1024
#: Buddhist Era = Common Era + 543 (the subject's date is written in it).
_BUDDHIST_ERA_OFFSET: Final = 543


def etax_covers(type_code: str) -> bool:
    return type_code in SUBJECT_TYPES


def etax_subject(invoice: Invoice) -> str:
    """``[dd/mm/yyyy][TYPE][number]``: the issue date (seller's calendar, Buddhist Era),
    the type and the document number; a debit or credit note adds the number of the
    invoice it corrects. The service stamps nothing whose subject breaks the pattern, so
    the subject carries nothing else."""
    issued = invoice.issued_at.date()
    day = f"{issued.day:02d}/{issued.month:02d}/{issued.year + _BUDDHIST_ERA_OFFSET}"
    fields = [day, SUBJECT_TYPES[invoice.type_code], invoice.number]
    if invoice.is_debit_or_credit_note and invoice.referenced_document is not None:
        fields.append(invoice.referenced_document.number)
    return "".join(f"[{field}]" for field in fields)
