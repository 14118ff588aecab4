"""Invoices in the ledger: inserted once by number, kept current on payment, phones fixed
by people (every change recorded: ``invoice_changes``, ``phone_edits``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from courier.ledger.connection import LedgerFile, now_utc
from courier.ledger.connection import count_rows as _count
from courier.phones import PhoneResult, clean_phone, mask_phone
from courier.pulling import InvoiceUpdate


def _patched(record_json: str, update: InvoiceUpdate) -> str:
    record = json.loads(record_json)
    record["payment_status"] = update.payment_status
    record["due_date"] = update.due_date.isoformat()
    record.pop("amount_paid", None)
    if update.amount_paid:
        record["amount_paid"] = str(update.amount_paid)
    record.pop("paid_at", None)
    if update.paid_at is not None:
        record["paid_at"] = update.paid_at.isoformat()
    if update.erp_updated_at is not None:
        record["updated_at"] = update.erp_updated_at.isoformat()
    return json.dumps(record, ensure_ascii=False)


class InvoiceRecords(LedgerFile):
    def latest_issued_at(self, source: str) -> datetime | None:
        with self.connect() as con:
            rows = con.execute(
                "SELECT max(issued_at) FROM invoices WHERE source = ?", [source]
            ).fetchall()
        return rows[0][0] if rows else None

    def latest_erp_update(self, source: str) -> datetime | None:
        """The newest change the ERP reported for an invoice of ``source`` (its own
        ``updated_at``, else the issue time): where the next pull's look for changes starts."""
        with self.connect() as con:
            rows = con.execute(
                "SELECT max(coalesce(erp_updated_at, issued_at)) FROM invoices WHERE source = ?",
                [source],
            ).fetchall()
        return rows[0][0] if rows else None

    def tracked_state(self, numbers: Sequence[str]) -> pd.DataFrame:
        """What a pull compares for the known invoices among ``numbers`` (exact decimals)."""
        columns = ["invoice_number", "payment_status", "amount_paid", "due_date", "paid_at"]
        if not numbers:
            return pd.DataFrame(columns=columns)
        with self.connect() as con:
            rows = con.execute(
                f"SELECT {', '.join(columns)} FROM invoices "
                "WHERE invoice_number IN (SELECT unnest(?))",
                [list(numbers)],
            ).fetchall()
        return pd.DataFrame(rows, columns=columns)

    def apply_invoice_updates(
        self, updates: Sequence[InvoiceUpdate], source: str, changed_by: str
    ) -> int:
        """Write what a pull found changed in known invoices, and one ``invoice_changes``
        row per changed field (old and new value, who, when), in one transaction. The
        stored record follows, so a document rendered again reads the same."""
        if not updates:
            return 0
        stamp = now_utc()
        numbers = [u.invoice_number for u in updates]
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                records = dict(
                    con.execute(
                        "SELECT invoice_number, record_json FROM invoices "
                        "WHERE invoice_number IN (SELECT unnest(?))",
                        [numbers],
                    ).fetchall()
                )
                frame = pd.DataFrame(
                    {
                        "invoice_number": numbers,
                        "payment_status": [u.payment_status for u in updates],
                        "amount_paid": [str(u.amount_paid) for u in updates],
                        "due_date": [u.due_date for u in updates],
                        "paid_at": [u.paid_at for u in updates],
                        "erp_updated_at": [u.erp_updated_at for u in updates],
                        "record_json": [_patched(records[u.invoice_number], u) for u in updates],
                    }
                )
                con.register("invoice_updates", frame)
                con.execute(
                    """
                    UPDATE invoices SET payment_status = u.payment_status,
                        amount_paid = CAST(u.amount_paid AS DECIMAL(18, 2)),
                        due_date = u.due_date, paid_at = u.paid_at,
                        erp_updated_at = coalesce(u.erp_updated_at, invoices.erp_updated_at),
                        record_json = u.record_json, updated_at = ?
                    FROM invoice_updates u WHERE invoices.invoice_number = u.invoice_number
                    """,
                    [stamp],
                )
                con.unregister("invoice_updates")
                con.executemany(
                    "INSERT INTO invoice_changes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        [u.invoice_number, field, old, new, source, changed_by,
                         u.erp_updated_at, stamp]
                        for u in updates
                        for field, old, new in u.changes
                    ],
                )  # fmt: skip
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        return len(updates)

    def insert_invoices(self, rows: pd.DataFrame) -> int:
        """Insert new invoices; an invoice number already present is left as it is."""
        if rows.empty:
            return 0
        with self.connect() as con:
            before = _count(con, "invoices")
            con.register("new_invoices", rows)
            columns = ", ".join(rows.columns)
            con.execute(
                f"INSERT INTO invoices ({columns}) SELECT {columns} FROM new_invoices "
                "ON CONFLICT (invoice_number) DO NOTHING"
            )
            con.unregister("new_invoices")
            return _count(con, "invoices") - before

    def record_rejects(self, source: str, rejects: Sequence[dict[str, str]]) -> None:
        if not rejects:
            return
        with self.connect() as con:
            con.executemany(
                "INSERT INTO invoice_rejects VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [
                    [source, r["record_key"], r["field"], r["problem"], r["raw_record"], now_utc()]
                    for r in rejects
                ],
            )

    def invoice_records(self, numbers: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The canonical records (for rendering) of the given invoices."""
        with self.connect() as con:
            rows = con.execute(
                "SELECT invoice_number, record_json, phone_etda FROM invoices "
                "WHERE invoice_number IN (SELECT unnest(?))",
                [list(numbers)],
            ).fetchall()
        result = {}
        for number, record_json, phone_etda in rows:
            record = json.loads(record_json)
            record["_phone_etda"] = phone_etda
            result[number] = record
        return result

    def invoices_needing_documents(self) -> list[str]:
        """Invoices without both documents uploaded (never uploaded, or failed before)."""
        with self.connect() as con:
            rows = con.execute(
                """
                SELECT i.invoice_number FROM invoices i
                LEFT JOIN (SELECT invoice_number, count(*) AS ok FROM documents
                           WHERE status IN ('uploaded', 'not_applicable') GROUP BY 1) d
                    USING (invoice_number)
                WHERE coalesce(d.ok, 0) < 2
                ORDER BY i.issued_at, i.invoice_number
                """
            ).fetchall()
        return [row[0] for row in rows]

    def edit_phone(
        self,
        invoice_number: str,
        new_raw: str,
        edited_by: str,
        require_textable: bool = True,
    ) -> PhoneResult:
        """Replace the buyer's telephone number of one invoice and record the edit.

        The number is cleaned exactly as a pull cleans it (``clean_phone`` with the buyer's
        country as the region), so the invoice's phone fields, its masked form and its
        canonical record (what the next PDF prints) read as if the ERP had sent it. The
        ``phone_edits`` row (who, when, old, new) is written in the same transaction.
        Raises ``UnknownInvoice``, or ``PhoneNotTextable`` (nothing written) when
        ``require_textable`` and the number cannot receive SMS.
        """
        stamp = now_utc()
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                rows = con.execute(
                    "SELECT phone_raw, buyer_country, record_json FROM invoices "
                    "WHERE invoice_number = ?",
                    [invoice_number],
                ).fetchall()
                if not rows:
                    raise UnknownInvoice(invoice_number)
                old_raw, country, record_json = rows[0]
                result = clean_phone(new_raw, country)
                if require_textable and not result.textable:
                    raise PhoneNotTextable(result)
                record = json.loads(record_json)
                record.setdefault("buyer", {})["phone"] = new_raw
                con.execute(
                    """
                    UPDATE invoices SET phone_raw = ?, phone_e164 = ?, phone_etda = ?,
                        phone_type = ?, phone_status = ?, phone_reason = ?, phone_masked = ?,
                        record_json = ?, updated_at = ?
                    WHERE invoice_number = ?
                    """,
                    [
                        new_raw,
                        result.e164,
                        result.etda,
                        result.number_type,
                        result.status,
                        result.reason,
                        mask_phone(result.e164 or new_raw),
                        json.dumps(record, ensure_ascii=False),
                        stamp,
                        invoice_number,
                    ],
                )
                con.execute(
                    "INSERT INTO phone_edits VALUES (?, ?, ?, ?, ?)",
                    [invoice_number, old_raw, new_raw, edited_by, stamp],
                )
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        return result

    def invoice_phone(self, invoice_number: str) -> tuple[str, str] | None:
        """(raw telephone field, buyer country) of one invoice; None if there is no such
        invoice. The full number is for the edit dialog only: screens show it masked."""
        with self.connect(read_only=True) as con:
            rows = con.execute(
                "SELECT coalesce(phone_raw, ''), buyer_country FROM invoices "
                "WHERE invoice_number = ?",
                [invoice_number],
            ).fetchall()
        return (str(rows[0][0]), str(rows[0][1])) if rows else None


class UnknownInvoice(LookupError):
    """No invoice with this number in the ledger."""


class PhoneNotTextable(ValueError):
    """A telephone number that cannot receive SMS; ``result.reason`` says why."""

    def __init__(self, result: PhoneResult) -> None:
        super().__init__(result.reason)
        self.result = result
