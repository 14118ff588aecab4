"""Render each invoice (hybrid PDF/A-3 + e-invoice XML) and store both, recording outcomes.

An invoice whose documents are not both stored is never texted (``courier.planning``);
failures are flagged per document in the ledger and retried on the next run.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from courier.adapters.docstore import DocumentStore
from courier.adapters.errors import AdapterError
from courier.documents.etda_xml import EtdaError, build_etda_xml
from courier.documents.pdf import BatchResult
from courier.documents.pdfa import ETDA_XML_FILENAME, embed_invoice_xml
from courier.documents.ubl_xml import UblError, build_ubl_invoice, profile_for_seller_country
from courier.domain import Invoice
from courier.invoice_io import InvoiceRecordError, invoice_from_dict
from courier.ledger import Ledger
from courier.retry import RetryPolicy

log = logging.getLogger(__name__)

_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9._-]")

CONTENT_TYPES = {"pdf": "application/pdf", "xml": "application/xml"}

#: Consecutive failed uploads (each after its own retries) after which a batch stops trying.
STORE_DOWN_AFTER = 3
STORE_DOWN_REASON = "Upload failed: document store unavailable; retried on the next run"


def document_key(invoice: Invoice, kind: str) -> str:
    """Where a document lives in the store: per seller, per invoice; safe characters only."""
    seller = _UNSAFE_KEY_CHARS.sub("_", invoice.seller.tax_id or invoice.seller.name)[:64]
    number = _UNSAFE_KEY_CHARS.sub("_", invoice.number)[:128]
    return f"{seller}/{number}.{kind}"


class Renderer(Protocol):
    """Anything that lays out invoices into PDFs: one ``PdfRenderer`` or a process pool."""

    def render_batch(self, invoices: Sequence[Invoice]) -> BatchResult: ...


def build_xml(invoice: Invoice, profile: str, phone_etda: str | None) -> tuple[bytes, str]:
    """The invoice's e-invoice XML in ``profile`` and the file name it travels under."""
    if profile == "etda":
        return build_etda_xml(invoice, phone_etda), ETDA_XML_FILENAME
    return build_ubl_invoice(invoice), f"{_UNSAFE_KEY_CHARS.sub('_', invoice.number)}.xml"


def render_documents(
    invoices: Sequence[Invoice],
    phones_etda: dict[str, str | None],
    renderer: Renderer,
    profile_overrides: Mapping[str, str] | None = None,
) -> tuple[dict[str, dict[str, bytes]], dict[str, str]]:
    """Per invoice: its XML in the seller country's profile (ETDA e-Tax for Thai sellers,
    UBL 2.1 / EN 16931 otherwise) and its PDF as PDF/A-3b with that XML embedded — the same
    bytes the buyer downloads and the tax authority's e-mail route accepts. Returns the
    documents and, for each invoice that could not get them, the reason."""
    errors: dict[str, str] = {}
    xmls: dict[str, tuple[bytes, str, str]] = {}
    for invoice in invoices:
        try:
            profile = profile_for_seller_country(invoice.seller.country, profile_overrides)
            xml, filename = build_xml(invoice, profile, phones_etda.get(invoice.number))
        except (EtdaError, UblError, ValueError) as error:
            errors[invoice.number] = f"e-invoice XML rejected the invoice data: {error}"
            continue
        xmls[invoice.number] = (xml, filename, profile)
    batch = renderer.render_batch([i for i in invoices if i.number in xmls])
    errors.update(batch.errors)
    documents: dict[str, dict[str, bytes]] = {}
    for invoice in invoices:
        if invoice.number in errors:
            continue
        xml, filename, chosen = xmls[invoice.number]
        try:
            pdf = embed_invoice_xml(
                batch.pdfs[invoice.number],
                xml,
                xml_filename=filename,
                title=f"{invoice.number} — {invoice.seller.name}",
                profile=chosen,
                document_date=invoice.issued_at,
            )
        except ValueError as error:
            errors[invoice.number] = f"PDF/A-3 with embedded XML failed: {error}"
            continue
        documents[invoice.number] = {"pdf": pdf, "xml": xml}
    return documents, errors


def publish_batch(
    numbers: Sequence[str],
    ledger: Ledger,
    renderer: Renderer,
    store: DocumentStore,
    policy: RetryPolicy,
    profile_overrides: Mapping[str, str] | None = None,
) -> dict[str, int]:
    """Render and upload the documents of ``numbers``; returns outcome counts."""
    records = ledger.invoice_records(numbers)
    invoices: list[Invoice] = []
    phones: dict[str, str | None] = {}
    rows: list[dict[str, Any]] = []
    for number, record in records.items():
        phones[number] = record.pop("_phone_etda", None)
        try:
            invoices.append(invoice_from_dict(record))
        except InvoiceRecordError as error:  # a stored record that no longer parses
            rows += _failed(number, "render_failed", str(error))
    documents, errors = render_documents(invoices, phones, renderer, profile_overrides)
    for number, reason in errors.items():
        log.warning("invoice %s: documents not rendered: %s", number, reason)
        rows += _failed(number, "render_failed", reason)
    by_number = {invoice.number: invoice for invoice in invoices}
    failures_in_a_row = 0
    for number, contents in documents.items():
        for kind, content in contents.items():
            if failures_in_a_row >= STORE_DOWN_AFTER:
                # The store is down: stop paying retry back-offs for every document.
                rows.append(
                    {
                        "invoice_number": number,
                        "kind": kind,
                        "status": "upload_failed",
                        "error": STORE_DOWN_REASON,
                    }
                )
                continue
            row = _upload(by_number[number], kind, content, store, policy)
            failures_in_a_row = failures_in_a_row + 1 if row["status"] != "uploaded" else 0
            rows.append(row)
    ledger.record_documents(rows)
    return dict(Counter(f"{row['kind']}_{row['status']}" for row in rows))


def _failed(number: str, status: str, reason: str) -> list[dict[str, Any]]:
    return [
        {"invoice_number": number, "kind": kind, "status": status, "error": reason}
        for kind in CONTENT_TYPES
    ]


def _upload(
    invoice: Invoice, kind: str, content: bytes, store: DocumentStore, policy: RetryPolicy
) -> dict[str, Any]:
    digest = hashlib.sha256(content).hexdigest()
    row: dict[str, Any] = {
        "invoice_number": invoice.number,
        "kind": kind,
        "sha256": digest,
        "size_bytes": len(content),
    }
    try:
        for attempt in policy.context():
            with attempt:
                stored = store.put(document_key(invoice, kind), content, CONTENT_TYPES[kind])
    except AdapterError as error:
        return {**row, "status": "upload_failed", "error": f"Upload failed: {error}"}
    if stored.sha256 and stored.sha256 != digest:
        return {
            **row,
            "status": "upload_failed",
            "error": "Upload failed: the store kept different bytes (checksum mismatch)",
        }
    return {
        **row,
        "status": "uploaded",
        "url": stored.url,
        "expires_at": stored.expires_at,
        "error": None,
    }
