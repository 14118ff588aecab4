"""Numbered migrations: each upgrades a ledger file people already have, once.

``schema_migrations`` records which ran. Migration 1 is the schema as first released,
written idempotently, so a ledger made before migrations were numbered (it has the tables,
not the record) takes it as a no-op and goes on from there. The views (``views.sql``) are
replaced whenever their text changed, after the migrations. A migration may also have a
Python step (a backfill that needs code, such as reading each invoice's record).

Add a migration: a new ``NNNN_name.sql`` here, listed in ``MIGRATIONS``, never editing an
old one; and a test that opens a ledger made before it (``tests/fixtures``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from courier.domain import party_key

_HERE = Path(__file__).resolve().parent


def _backfill_payments_and_buyers(con: duckdb.DuckDBPyConnection) -> None:
    """Existing invoices get what migration 2 added, from their stored records: the amount
    paid (all of it for a paid invoice, else what the record says), the seller's own time
    zone if the record names one, and the buyer key."""
    rows = con.execute("SELECT invoice_number, record_json FROM invoices").fetchall()
    if not rows:
        return
    frame = pd.DataFrame(
        [_facts(number, json.loads(text)) for number, text in rows],
        columns=["invoice_number", "amount_paid", "seller_timezone", "buyer_key", "paid_at"],
    )
    con.register("backfill", frame)
    con.execute(
        """
        UPDATE invoices SET
            amount_paid = CASE WHEN invoices.payment_status = 'paid' THEN invoices.grand_total
                               ELSE CAST(b.amount_paid AS DECIMAL(18, 2)) END,
            seller_timezone = b.seller_timezone,
            buyer_key = b.buyer_key,
            paid_at = CASE WHEN invoices.payment_status = 'paid'
                           THEN coalesce(CAST(b.paid_at AS TIMESTAMPTZ), invoices.updated_at) END
        FROM backfill b WHERE invoices.invoice_number = b.invoice_number
        """
    )
    con.unregister("backfill")


def _facts(number: str, record: dict[str, Any]) -> tuple[str, str, str, str, str | None]:
    seller = record.get("seller") or {}
    buyer = record.get("buyer") or {}
    buyer_country = (buyer.get("address") or {}).get("country", "")
    paid_at = record.get("paid_at") or None  # ISO 8601 text, cast by DuckDB
    return (
        number,
        str(record.get("amount_paid") or "0"),
        str(seller.get("timezone") or ""),
        party_key(
            str(buyer.get("tax_id") or ""),
            str(buyer.get("branch") or ""),
            str(buyer.get("name") or ""),
            str(buyer_country),
        ),
        paid_at,
    )


def _backfill_emails(con: duckdb.DuckDBPyConnection) -> None:
    """Existing invoices get their buyer's e-mail address from their stored records,
    judged as a pull judges it (``courier.emails``)."""
    rows = con.execute("SELECT invoice_number, record_json FROM invoices").fetchall()
    if not rows:
        return
    frame = pd.DataFrame(
        [_email_facts(number, json.loads(text)) for number, text in rows],
        columns=["invoice_number", "email_raw", "buyer_email", "email_status", "email_reason",
                 "email_masked"],
    )  # fmt: skip
    con.register("backfill", frame)
    con.execute(
        """
        UPDATE invoices SET email_raw = b.email_raw, buyer_email = nullif(b.buyer_email, ''),
            email_status = b.email_status, email_reason = b.email_reason,
            email_masked = b.email_masked
        FROM backfill b WHERE invoices.invoice_number = b.invoice_number
        """
    )
    con.unregister("backfill")


def _email_facts(number: str, record: dict[str, Any]) -> tuple[str, ...]:
    from courier.emails import clean_email, mask_email

    raw = str((record.get("buyer") or {}).get("email") or "")
    check = clean_email(raw)
    masked = mask_email(check.address or raw)
    return (number, raw, check.address or "", check.status, check.reason, masked)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql_file: str
    backfill: Callable[[duckdb.DuckDBPyConnection], None] | None = None

    @property
    def sql(self) -> str:
        return _read(self.sql_file)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "baseline", "0001_baseline.sql"),
    Migration(2, "payments and reminders", "0002_payments_reminders.sql",
              _backfill_payments_and_buyers),
    Migration(3, "e-mail channel", "0003_email.sql", _backfill_emails),
    Migration(4, "e-mail sending and mail back", "0004_email_sending.sql"),
)  # fmt: skip

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        VARCHAR NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger_meta (
    key         VARCHAR PRIMARY KEY,
    value       VARCHAR NOT NULL
);
"""


@cache
def _read(name: str) -> str:
    return (_HERE / name).read_text(encoding="utf-8")


def views_sql() -> str:
    return _read("views.sql")


def _views_digest() -> str:
    return hashlib.sha256(views_sql().encode()).hexdigest()


def latest_version() -> int:
    return MIGRATIONS[-1].version


def apply_migrations(con: duckdb.DuckDBPyConnection, up_to: int | None = None) -> list[int]:
    """Apply the migrations (up to version ``up_to``) this file has not had, each in its
    own transaction; the views are ``migrate``'s business. Returns the versions applied."""
    con.execute(_BOOKKEEPING)
    done = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied: list[int] = []
    for migration in MIGRATIONS:
        if migration.version in done or (up_to is not None and migration.version > up_to):
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(migration.sql)
            if migration.backfill is not None:
                migration.backfill(con)
            con.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, now())",
                [migration.version, migration.name],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(migration.version)
    return applied


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply the migrations this file has not had, then replace the views if they
    changed. Returns the versions applied."""
    applied = apply_migrations(con)
    digest = _views_digest()
    current = con.execute("SELECT value FROM ledger_meta WHERE key = 'views_sha256'").fetchall()
    if applied or not current or current[0][0] != digest:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(views_sql())
            con.execute(
                "INSERT INTO ledger_meta VALUES ('views_sha256', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [digest],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    return applied


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """The newest schema in an empty database (e.g. in memory, for empty frames)."""
    migrate(con)
