"""The ledger: one DuckDB file holding every invoice, document, message and charge.

DuckDB allows one read-write process *or* many readers, never both. So connections are
short (open, do one unit of work, close) and opening retries on the lock error; the
dashboard opens read-only the same way. Committed rows survive a crash; the outbox row of
a send is committed *before* the gateway is called, which is what makes "never twice"
possible (see ``courier.sending``).

Analysts read two documented views: ``invoice_status`` (one row per invoice) and
``charges`` (one row per charged SMS); see the README.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from courier.phones import PhoneResult, clean_phone, mask_phone

#: How long to keep retrying when another process holds the file (seconds).
LOCK_WAIT_S = 30.0
_LOCK_RETRY_SLEEP_S = 0.05

# Two threads of one process share DuckDB's database instance, so two migrations at once
# conflict ("Catalog write-write conflict" on the views); they take turns. Processes
# already do: only one can hold the file read-write.
_MIGRATE_LOCK = threading.Lock()

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS invoices (
    invoice_number   VARCHAR PRIMARY KEY,
    type_code        VARCHAR NOT NULL,
    seller_name      VARCHAR NOT NULL,
    seller_tax_id    VARCHAR,
    seller_country   VARCHAR NOT NULL,
    buyer_name       VARCHAR NOT NULL,
    buyer_country    VARCHAR NOT NULL,
    issued_at        TIMESTAMPTZ NOT NULL,
    due_date         DATE NOT NULL,
    currency         VARCHAR NOT NULL,
    vat_rate         DECIMAL(6, 3) NOT NULL,
    line_total       DECIMAL(18, 2) NOT NULL,
    vat_amount       DECIMAL(18, 2) NOT NULL,
    grand_total      DECIMAL(18, 2) NOT NULL,
    payment_status   VARCHAR NOT NULL,
    phone_raw        VARCHAR,
    phone_e164       VARCHAR,
    phone_etda       VARCHAR,
    phone_type       VARCHAR,
    phone_status     VARCHAR NOT NULL,
    phone_reason     VARCHAR NOT NULL,
    phone_masked     VARCHAR NOT NULL,
    record_json      VARCHAR NOT NULL,
    source           VARCHAR NOT NULL,
    pulled_at        TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);

-- Source records that could not become invoices: kept, never silently dropped.
CREATE TABLE IF NOT EXISTS invoice_rejects (
    source           VARCHAR NOT NULL,
    record_key       VARCHAR NOT NULL,
    field            VARCHAR NOT NULL,
    problem          VARCHAR NOT NULL,
    raw_record       VARCHAR NOT NULL,
    seen_at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, record_key, field, problem)
);

CREATE TABLE IF NOT EXISTS documents (
    invoice_number   VARCHAR NOT NULL,
    kind             VARCHAR NOT NULL,          -- pdf | xml
    status           VARCHAR NOT NULL,  -- uploaded | upload_failed | render_failed | not_applicable
    url              VARCHAR,
    sha256           VARCHAR,
    size_bytes       BIGINT,
    error            VARCHAR,
    attempts         INTEGER NOT NULL DEFAULT 0,
    uploaded_at      TIMESTAMPTZ,
    expires_at       TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (invoice_number, kind)
);

-- The outbox: one row per intent to send, written before the gateway is called.
CREATE TABLE IF NOT EXISTS messages (
    idempotency_key     VARCHAR PRIMARY KEY,    -- <invoice>:<purpose>
    invoice_number      VARCHAR NOT NULL,
    purpose             VARCHAR NOT NULL,       -- on_issue | manual:<id> | reminder:<rule>
    requested_by        VARCHAR NOT NULL,
    channel             VARCHAR NOT NULL DEFAULT 'sms',
    to_e164             VARCHAR NOT NULL,
    destination_country VARCHAR NOT NULL,
    body                VARCHAR NOT NULL,
    encoding            VARCHAR NOT NULL,
    segments            INTEGER NOT NULL,
    unit_price          DECIMAL(18, 6) NOT NULL, -- quoted when the intent was made
    amount              DECIMAL(18, 6) NOT NULL,
    currency            VARCHAR NOT NULL,
    status              VARCHAR NOT NULL,       -- pending | accepted | failed | retry | unknown
    provider_sid        VARCHAR,
    provider_status     VARCHAR,
    error_code          VARCHAR,
    error_reason        VARCHAR,
    attempts            INTEGER NOT NULL DEFAULT 0,
    run_id              VARCHAR,
    created_at          TIMESTAMPTZ NOT NULL,
    sent_at             TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ NOT NULL
);

-- One row per SMS the gateway accepted: segments x the agreed price for the country.
CREATE TABLE IF NOT EXISTS sms_charges (
    idempotency_key     VARCHAR PRIMARY KEY,
    invoice_number      VARCHAR NOT NULL,
    provider_sid        VARCHAR NOT NULL,
    destination_country VARCHAR NOT NULL,
    segments            INTEGER NOT NULL,
    unit_price          DECIMAL(18, 6) NOT NULL,
    amount              DECIMAL(18, 6) NOT NULL,
    currency            VARCHAR NOT NULL,
    provider_price      DECIMAL(18, 6),
    run_id              VARCHAR,
    charged_at          TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS phone_edits (
    invoice_number   VARCHAR NOT NULL,
    old_raw          VARCHAR,
    new_raw          VARCHAR NOT NULL,
    edited_by        VARCHAR NOT NULL,
    edited_at        TIMESTAMPTZ NOT NULL
);

-- Numbers that asked not to be texted (STOP), checked before every send.
CREATE TABLE IF NOT EXISTS opt_outs (
    phone_e164       VARCHAR PRIMARY KEY,
    source           VARCHAR NOT NULL,          -- inbound_stop | gateway_21610 | manual
    opted_out_at     TIMESTAMPTZ NOT NULL
);

-- Every delivery receipt as it arrived (status callback or polling), for audit.
CREATE TABLE IF NOT EXISTS delivery_events (
    provider_sid     VARCHAR NOT NULL,
    status           VARCHAR NOT NULL,
    error_code       VARCHAR,
    provider_price   DECIMAL(18, 6),
    source           VARCHAR NOT NULL,          -- callback | poll
    received_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS runs (
    run_id           VARCHAR PRIMARY KEY,
    flow             VARCHAR NOT NULL,
    started_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ,
    summary_json     VARCHAR
);

-- Columns added after the first release (kept idempotent for existing ledgers).
ALTER TABLE messages ADD COLUMN IF NOT EXISTS provider_error_code VARCHAR;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS provider_status_at TIMESTAMPTZ;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS delivered_at TIMESTAMPTZ;

CREATE OR REPLACE VIEW charges AS
SELECT c.charged_at, c.invoice_number, i.seller_name, c.destination_country, c.segments,
       c.unit_price, c.amount, c.currency, c.provider_price, c.provider_sid,
       c.idempotency_key, m.purpose, m.requested_by, c.run_id
FROM sms_charges c
JOIN messages m USING (idempotency_key)
LEFT JOIN invoices i ON i.invoice_number = c.invoice_number;

-- Agreed charge versus what the provider reported, per message and per day.
CREATE OR REPLACE VIEW charge_reconciliation AS
SELECT c.charged_at, c.invoice_number, c.provider_sid, c.destination_country, c.segments,
       c.amount AS agreed_amount, c.provider_price, c.currency,
       c.provider_price - c.amount AS difference,
       CASE WHEN c.provider_price IS NULL AND m.provider_status = 'failed'
                THEN 'not_charged_by_provider'
            WHEN c.provider_price IS NULL THEN 'awaiting_provider_price'
            WHEN c.provider_price = c.amount THEN 'matches'
            ELSE 'differs' END AS state
FROM sms_charges c
LEFT JOIN messages m USING (idempotency_key);

CREATE OR REPLACE VIEW charge_reconciliation_daily AS
SELECT CAST(charged_at AS DATE) AS day, currency, count(*) AS messages,
       sum(agreed_amount) AS agreed_total,
       sum(provider_price) AS provider_total,
       count(*) FILTER (WHERE provider_price IS NULL) AS awaiting_provider_price,
       coalesce(sum(provider_price), 0) - sum(agreed_amount)
           FILTER (WHERE provider_price IS NOT NULL) AS difference,
       count(*) FILTER (WHERE state = 'differs') AS messages_differing
FROM charge_reconciliation
GROUP BY ALL
ORDER BY day;

CREATE OR REPLACE VIEW invoice_status AS
WITH docs AS (
    SELECT invoice_number,
           count(*) FILTER (WHERE status IN ('uploaded', 'not_applicable')) AS uploaded,
           any_value(url) FILTER (WHERE kind = 'pdf' AND status = 'uploaded') AS pdf_url,
           any_value(url) FILTER (WHERE kind = 'xml' AND status = 'uploaded') AS xml_url,
           string_agg(kind || ': ' || error, '; ')
               FILTER (WHERE status NOT IN ('uploaded', 'not_applicable')) AS document_error
    FROM documents GROUP BY invoice_number
), sent AS (
    SELECT invoice_number,
           count(*) FILTER (WHERE status = 'accepted') AS sends,
           max(sent_at) FILTER (WHERE status = 'accepted') AS last_sent_at,
           arg_max(status, updated_at) AS last_status,
           arg_max(error_reason, updated_at) AS last_error,
           arg_max(provider_status, updated_at) FILTER (WHERE status = 'accepted')
               AS last_provider_status,
           arg_max(provider_error_code, updated_at) FILTER (WHERE status = 'accepted')
               AS last_provider_error
    FROM messages GROUP BY invoice_number
), money AS (
    SELECT invoice_number, sum(amount) AS total_charges, any_value(currency) AS charge_currency
    FROM sms_charges GROUP BY invoice_number
)
SELECT i.invoice_number,
       i.issued_at,
       i.due_date,
       i.seller_name,
       i.buyer_name,
       i.buyer_country,
       i.grand_total,
       i.currency,
       i.phone_masked,
       i.phone_status,
       i.phone_reason,
       CASE WHEN coalesce(d.uploaded, 0) = 2 THEN 'uploaded'
            WHEN d.invoice_number IS NULL THEN 'not_uploaded'
            ELSE 'failed' END AS document_status,
       d.document_error,
       d.pdf_url,
       d.xml_url,
       CASE WHEN coalesce(s.sends, 0) > 0 THEN 'sent'
            WHEN s.last_status IS NOT NULL THEN s.last_status
            WHEN i.phone_status <> 'ok' THEN 'not_sent'
            ELSE 'waiting' END AS sms_status,
       CASE WHEN coalesce(s.sends, 0) > 0 THEN ''
            WHEN s.last_error IS NOT NULL THEN s.last_error
            WHEN i.phone_status <> 'ok' THEN i.phone_reason
            WHEN coalesce(d.uploaded, 0) < 2 THEN 'Document not uploaded yet'
            ELSE '' END AS reason,
       s.last_provider_status AS delivery_status,
       s.last_provider_error AS delivery_error_code,
       s.last_sent_at,
       coalesce(s.sends, 0) AS sends,
       coalesce(m.total_charges, 0)::DECIMAL(18, 6) AS total_charges,
       m.charge_currency
FROM invoices i
LEFT JOIN docs d USING (invoice_number)
LEFT JOIN sent s USING (invoice_number)
LEFT JOIN money m USING (invoice_number);
"""


#: Delivery statuses in the order they can follow each other; a receipt never moves back.
_STATUS_RANK = {
    "accepted": 1,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
}


@dataclass(frozen=True)
class AcceptedSend:
    key: str
    provider_sid: str
    provider_status: str
    attempts: int
    charge: dict[str, Any]  # invoice_number, destination_country, segments, unit_price, ...


@dataclass(frozen=True)
class FailedSend:
    key: str
    status: str  # failed | retry | unknown
    error_code: str | None
    reason: str
    attempts: int


class LedgerBusy(RuntimeError):
    """Another process held the ledger file for longer than the ledger's ``lock_wait_s``."""


def _is_lock_error(error: Exception) -> bool:
    """Another holder of the file: another process (a lock), this same process holding it
    read-write while we ask read-only ("different configuration"), or two threads of this
    process opening it at the same instant ("unique file handle conflict"). All pass; wait."""
    text = str(error).lower()
    return any(
        sign in text for sign in ("lock", "different configuration", "unique file handle conflict")
    )


def now_utc() -> datetime:
    return datetime.now().astimezone()


class Ledger:
    """The ledger file. Each call opens a short connection unless inside ``holding()``."""

    def __init__(self, path: Path, lock_wait_s: float = LOCK_WAIT_S) -> None:
        self.path = path
        self.lock_wait_s = lock_wait_s  # a screen waits less than a run step
        self._held: duckdb.DuckDBPyConnection | None = None

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Keep one connection for a batch of calls (opening one costs ~10 ms)."""
        if self._held is not None:
            yield
            return
        with self._open() as con:
            self._held = con
            try:
                yield
            finally:
                self._held = None

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._held is not None:
            yield self._held
            return
        with self._open(read_only) as con:
            yield con

    @contextmanager
    def _open(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection; waits (bounded) while another process holds the file."""
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_wait_s
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.Error as error:  # IOException on lock contention
                if not _is_lock_error(error) or time.monotonic() > deadline:
                    if _is_lock_error(error):
                        raise LedgerBusy(f"ledger {self.path} stayed locked") from error
                    raise
                time.sleep(_LOCK_RETRY_SLEEP_S)
        try:
            yield con
        finally:
            con.close()

    def migrate(self) -> None:
        with _MIGRATE_LOCK, self.connect() as con:
            con.execute(SCHEMA_SQL)

    # -- invoices --------------------------------------------------------------------

    def known_invoice_numbers(self, numbers: Sequence[str]) -> set[str]:
        if not numbers:
            return set()
        with self.connect() as con:
            rows = con.execute(
                "SELECT invoice_number FROM invoices WHERE invoice_number IN (SELECT unnest(?))",
                [list(numbers)],
            ).fetchall()
        return {row[0] for row in rows}

    def latest_issued_at(self, source: str) -> datetime | None:
        with self.connect() as con:
            rows = con.execute(
                "SELECT max(issued_at) FROM invoices WHERE source = ?", [source]
            ).fetchall()
        return rows[0][0] if rows else None

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

    # -- documents -------------------------------------------------------------------

    def record_documents(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        stamp = now_utc()
        with self.connect() as con:
            con.executemany(
                """
                INSERT INTO documents (invoice_number, kind, status, url, sha256, size_bytes,
                                       error, attempts, uploaded_at, expires_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)
                ON CONFLICT (invoice_number, kind) DO UPDATE SET
                    status = excluded.status,
                    url = coalesce(excluded.url, documents.url),
                    sha256 = coalesce(excluded.sha256, documents.sha256),
                    size_bytes = coalesce(excluded.size_bytes, documents.size_bytes),
                    error = excluded.error,
                    attempts = documents.attempts + 1,
                    uploaded_at = coalesce(excluded.uploaded_at, documents.uploaded_at),
                    expires_at = coalesce(excluded.expires_at, documents.expires_at),
                    updated_at = excluded.updated_at
                """,
                [
                    [
                        r["invoice_number"],
                        r["kind"],
                        r["status"],
                        r.get("url"),
                        r.get("sha256"),
                        r.get("size_bytes"),
                        r.get("error"),
                        stamp if r["status"] == "uploaded" else None,
                        r.get("expires_at"),
                        stamp,
                    ]
                    for r in rows
                ],
            )

    # -- the send pipeline's view ---------------------------------------------------

    def send_candidates(self) -> pd.DataFrame:
        """Every invoice with what planning needs: phone, documents, earlier messages."""
        with self.connect() as con:
            return con.execute(
                """
                SELECT i.invoice_number, i.issued_at, i.buyer_country, i.phone_status,
                       i.phone_e164, i.record_json,
                       any_value(d.url) FILTER (WHERE d.kind = 'pdf') AS pdf_url,
                       count(d.invoice_number) AS uploaded_documents
                FROM invoices i
                LEFT JOIN documents d
                    ON d.invoice_number = i.invoice_number
                    AND d.status IN ('uploaded', 'not_applicable')
                GROUP BY ALL
                ORDER BY i.issued_at, i.invoice_number
                """
            ).df()

    def message_keys(self) -> pd.DataFrame:
        with self.connect() as con:
            return con.execute(
                "SELECT idempotency_key, invoice_number, purpose, status FROM messages"
            ).df()

    # -- outbox ----------------------------------------------------------------------

    def claim_intent(self, intent: dict[str, Any]) -> bool:
        """Write the outbox row *before* calling the gateway. False if the key exists."""
        return bool(self.claim_intents([intent]))

    def claim_intents(self, intents: Sequence[dict[str, Any]]) -> set[str]:
        """Claim a group of intents in one transaction: each new key gets its ``pending``
        outbox row, and a ``retry`` row (transient failure last time) is taken again.
        Returns the keys this call claimed; any other key is someone else's or final."""
        if not intents:
            return set()
        stamp = now_utc()
        columns = [
            "idempotency_key",
            "invoice_number",
            "purpose",
            "requested_by",
            "to_e164",
            "destination_country",
            "body",
            "encoding",
            "segments",
            "unit_price",
            "amount",
            "currency",
            "run_id",
        ]
        frame = pd.DataFrame([{c: intent.get(c) for c in columns} for intent in intents])
        frame = frame.drop_duplicates("idempotency_key")
        frame["unit_price"] = frame["unit_price"].astype(str)  # exact, cast by DuckDB
        frame["amount"] = frame["amount"].astype(str)
        frame["segments"] = frame["segments"].astype(int)
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                con.register("new_intents", frame)
                inserted = con.execute(
                    """
                    INSERT INTO messages (idempotency_key, invoice_number, purpose, requested_by,
                        to_e164, destination_country, body, encoding, segments, unit_price,
                        amount, currency, status, attempts, run_id, created_at, updated_at)
                    SELECT idempotency_key, invoice_number, purpose, requested_by, to_e164,
                        destination_country, body, encoding, segments,
                        CAST(unit_price AS DECIMAL(18, 6)), CAST(amount AS DECIMAL(18, 6)),
                        currency, 'pending', 0, run_id, ?, ?
                    FROM new_intents
                    ON CONFLICT (idempotency_key) DO NOTHING
                    RETURNING idempotency_key
                    """,
                    [stamp, stamp],
                ).fetchall()
                reopened = con.execute(
                    """
                    UPDATE messages SET status = 'pending', run_id = n.run_id, updated_at = ?
                    FROM new_intents n
                    WHERE messages.idempotency_key = n.idempotency_key
                      AND messages.status = 'retry'
                    RETURNING messages.idempotency_key
                    """,
                    [stamp],
                ).fetchall()
                con.unregister("new_intents")
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        return {row[0] for row in inserted} | {row[0] for row in reopened}

    def pending_intents(self) -> list[dict[str, Any]]:
        """Rows left ``pending``: a process died between claiming and recording."""
        with self.connect() as con:
            cursor = con.execute("SELECT * FROM messages WHERE status = 'pending'")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def record_accepted(
        self,
        key: str,
        provider_sid: str,
        provider_status: str,
        charge: dict[str, Any],
        attempts: int,
    ) -> None:
        """Mark one intent accepted and write its one charge row (see ``record_outcomes``)."""
        self.record_outcomes(
            [AcceptedSend(key, provider_sid, provider_status, attempts, charge)], []
        )

    def record_failure(
        self, key: str, status: str, error_code: str | None, reason: str, attempts: int
    ) -> None:
        """``failed`` (permanent), ``retry`` (transient, next run) or ``unknown`` (a person)."""
        self.record_outcomes([], [FailedSend(key, status, error_code, reason, attempts)])

    def record_outcomes(
        self, accepted: Sequence[AcceptedSend], failed: Sequence[FailedSend]
    ) -> None:
        """Write a group of send outcomes in one transaction: each accepted intent with its
        one charge row (never one without the other), each failure with its reason."""
        if not accepted and not failed:
            return
        stamp = now_utc()
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                # Set-based writes (one statement per kind): row-by-row UPDATEs cost ~3 ms
                # each in DuckDB, which would throttle sending.
                if accepted:
                    frame = pd.DataFrame(
                        {
                            "key": [a.key for a in accepted],
                            "sid": [a.provider_sid for a in accepted],
                            "provider_status": [a.provider_status for a in accepted],
                            "attempts": [a.attempts for a in accepted],
                            "invoice_number": [a.charge["invoice_number"] for a in accepted],
                            "country": [a.charge["destination_country"] for a in accepted],
                            "segments": [int(a.charge["segments"]) for a in accepted],
                            # exact strings, cast to DECIMAL by DuckDB: no float on the way
                            "unit_price": [str(a.charge["unit_price"]) for a in accepted],
                            "amount": [str(a.charge["amount"]) for a in accepted],
                            "currency": [a.charge["currency"] for a in accepted],
                            "run_id": [a.charge.get("run_id") for a in accepted],
                        }
                    )
                    con.register("accepted_sends", frame)
                    con.execute(
                        """
                        UPDATE messages SET status = 'accepted', provider_sid = a.sid,
                            provider_status = a.provider_status,
                            attempts = messages.attempts + a.attempts, sent_at = ?,
                            updated_at = ?, error_code = NULL, error_reason = NULL
                        FROM accepted_sends a WHERE messages.idempotency_key = a.key
                        """,
                        [stamp, stamp],
                    )
                    con.execute(
                        """
                        INSERT INTO sms_charges (idempotency_key, invoice_number, provider_sid,
                            destination_country, segments, unit_price, amount, currency,
                            run_id, charged_at)
                        SELECT key, invoice_number, sid, country, segments,
                               CAST(unit_price AS DECIMAL(18, 6)), CAST(amount AS DECIMAL(18, 6)),
                               currency, run_id, ?
                        FROM accepted_sends
                        ON CONFLICT (idempotency_key) DO NOTHING
                        """,
                        [stamp],
                    )
                    con.unregister("accepted_sends")
                if failed:
                    frame = pd.DataFrame(
                        {
                            "key": [f.key for f in failed],
                            "status": [f.status for f in failed],
                            "error_code": [f.error_code for f in failed],
                            "reason": [f.reason for f in failed],
                            "attempts": [f.attempts for f in failed],
                        }
                    )
                    con.register("failed_sends", frame)
                    con.execute(
                        """
                        UPDATE messages SET status = f.status, error_code = f.error_code,
                            error_reason = f.reason, attempts = messages.attempts + f.attempts,
                            updated_at = ?
                        FROM failed_sends f WHERE messages.idempotency_key = f.key
                        """,
                        [stamp],
                    )
                    con.unregister("failed_sends")
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise

    # -- delivery receipts and opt-outs ---------------------------------------------

    def record_delivery(
        self,
        provider_sid: str,
        status: str,
        error_code: str | None,
        provider_price: Decimal | None,
        source: str,
    ) -> bool:
        """Apply a delivery receipt; statuses only move forward. False if the SID is unknown."""
        stamp = now_utc()
        rank = _STATUS_RANK.get(status, 0)
        with self.connect() as con:
            known = con.execute(
                "SELECT provider_status FROM messages WHERE provider_sid = ?", [provider_sid]
            ).fetchall()
            if not known:
                return False
            con.execute(
                "INSERT INTO delivery_events VALUES (?, ?, ?, ?, ?, ?)",
                [provider_sid, status, error_code, provider_price, source, stamp],
            )
            if rank >= _STATUS_RANK.get(known[0][0] or "", 0):
                con.execute(
                    """
                    UPDATE messages SET provider_status = ?, provider_error_code = ?,
                        provider_status_at = ?,
                        delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END
                    WHERE provider_sid = ?
                    """,
                    [status, error_code, stamp, status, stamp, provider_sid],
                )
            if provider_price is not None:
                con.execute(
                    "UPDATE sms_charges SET provider_price = ? WHERE provider_sid = ?",
                    [provider_price, provider_sid],
                )
        return True

    def awaiting_receipts(self, older_than_s: float, limit: int = 1000) -> list[str]:
        """SIDs of accepted messages with no final status (or no provider price) yet."""
        with self.connect() as con:
            rows = con.execute(
                """
                SELECT m.provider_sid FROM messages m
                JOIN sms_charges c USING (idempotency_key)
                WHERE m.status = 'accepted'
                  AND coalesce(m.provider_status, '') <> 'failed'  -- final; never priced
                  AND (coalesce(m.provider_status, '') NOT IN ('delivered', 'undelivered')
                       OR c.provider_price IS NULL)
                  AND m.sent_at < now() - to_seconds(?)
                ORDER BY m.sent_at
                LIMIT ?
                """,
                [older_than_s, limit],
            ).fetchall()
        return [row[0] for row in rows]

    def add_opt_out(self, phone_e164: str, source: str) -> None:
        with self.connect() as con:
            con.execute(
                "INSERT INTO opt_outs VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [phone_e164, source, now_utc()],
            )

    def remove_opt_out(self, phone_e164: str) -> None:
        with self.connect() as con:
            con.execute("DELETE FROM opt_outs WHERE phone_e164 = ?", [phone_e164])

    def opted_out(self) -> set[str]:
        with self.connect() as con:
            return {row[0] for row in con.execute("SELECT phone_e164 FROM opt_outs").fetchall()}

    # -- runs and summaries ---------------------------------------------------------

    def start_run(self, run_id: str, flow: str) -> None:
        with self.connect() as con:
            con.execute(
                "INSERT INTO runs (run_id, flow, started_at) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [run_id, flow, now_utc()],
            )

    def finish_run(self, run_id: str, summary: dict[str, Any]) -> None:
        with self.connect() as con:
            con.execute(
                "UPDATE runs SET finished_at = ?, summary_json = ? WHERE run_id = ?",
                [now_utc(), json.dumps(summary, default=str), run_id],
            )

    def summary(self, run_id: str | None = None) -> dict[str, Any]:
        """Totals for the whole ledger, plus what ``run_id`` itself did when given."""
        with self.connect(read_only=False) as con:
            totals = con.execute(
                """
                SELECT count(*),
                       count(*) FILTER (WHERE phone_status = 'ok'),
                       count(*) FILTER (WHERE phone_status = 'invalid'),
                       count(*) FILTER (WHERE phone_status = 'missing'),
                       count(*) FILTER (WHERE phone_status = 'not_mobile'),
                       count(*) FILTER (WHERE document_status = 'failed'),
                       count(*) FILTER (WHERE document_status <> 'uploaded'),
                       count(*) FILTER (WHERE sms_status = 'sent'),
                       count(*) FILTER (WHERE sms_status = 'unknown')
                FROM invoice_status
                """
            ).fetchall()[0]
            sms_total, charges_total = con.execute(
                "SELECT count(*), coalesce(sum(amount), 0) FROM sms_charges"
            ).fetchall()[0]
            rejects = _count(con, "invoice_rejects")
            result: dict[str, Any] = {
                "invoices": totals[0],
                "phone_ok": totals[1],
                "phone_invalid": totals[2],
                "phone_missing": totals[3],
                "phone_not_mobile": totals[4],
                "upload_failures": totals[5],
                "documents_missing": totals[6],
                "invoices_sent": totals[7],
                "sends_unknown": totals[8],
                "sms_total": sms_total,
                "charges_total": Decimal(charges_total),
                "rejected_records": rejects,
            }
            if run_id is not None:
                run_sms, run_charges = con.execute(
                    "SELECT count(*), coalesce(sum(amount), 0) FROM sms_charges WHERE run_id = ?",
                    [run_id],
                ).fetchall()[0]
                result["run_sms_sent"] = run_sms
                result["run_charges"] = Decimal(run_charges)
            return result

    # -- the dashboard's writes and reads (Send to Buyer) -------------------------------

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

    def send_all_candidates(self, numbers: Sequence[str]) -> pd.DataFrame:
        """``send_candidates()`` of ``numbers`` only, plus each invoice's last accepted
        send (``last_sent_at``): what the dashboard's "Send All" preview starts from."""
        with self.connect(read_only=True) as con:
            return con.execute(
                """
                WITH docs AS (
                    SELECT invoice_number,
                           any_value(url) FILTER (WHERE kind = 'pdf') AS pdf_url,
                           count(*) AS uploaded_documents
                    FROM documents WHERE status IN ('uploaded', 'not_applicable')
                    GROUP BY invoice_number
                ), sent AS (
                    SELECT invoice_number, max(sent_at) AS last_sent_at
                    FROM messages WHERE status = 'accepted' GROUP BY invoice_number
                )
                SELECT i.invoice_number, i.issued_at, i.buyer_country, i.phone_status,
                       i.phone_e164, i.record_json, d.pdf_url,
                       coalesce(d.uploaded_documents, 0) AS uploaded_documents,
                       s.last_sent_at
                FROM invoices i
                LEFT JOIN docs d USING (invoice_number)
                LEFT JOIN sent s USING (invoice_number)
                WHERE i.invoice_number IN (SELECT unnest(?))
                ORDER BY i.issued_at, i.invoice_number
                """,
                [list(numbers)],
            ).df()


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()
    return int(rows[0][0])


class UnknownInvoice(LookupError):
    """No invoice with this number in the ledger."""


class PhoneNotTextable(ValueError):
    """A telephone number that cannot receive SMS; ``result.reason`` says why."""

    def __init__(self, result: PhoneResult) -> None:
        super().__init__(result.reason)
        self.result = result
