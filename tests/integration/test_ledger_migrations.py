"""Numbered migrations upgrade a ledger people already have (made before they existed)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb

from courier.ledger import Ledger
from courier.ledger.migrations import latest_version

BEFORE_MIGRATIONS = Path(__file__).resolve().parents[1] / "fixtures/ledger_before_migrations.sql"


def old_ledger(tmp_path: Path) -> Path:
    """A ledger file as the release before numbered migrations wrote it."""
    path = tmp_path / "ledger.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(BEFORE_MIGRATIONS.read_text(encoding="utf-8"))
    return path


def test_a_ledger_made_before_migrations_is_upgraded_and_keeps_its_rows(tmp_path):
    path = old_ledger(tmp_path)
    ledger = Ledger(path)

    assert ledger.migrate() == list(range(1, latest_version() + 1))
    assert ledger.migrate() == []  # current: nothing to do the second time

    with ledger.connect(read_only=True) as con:
        versions = [r[0] for r in con.execute("SELECT version FROM schema_migrations").fetchall()]
        status = con.execute(
            "SELECT invoice_number, sms_status, sends, total_charges, payment_status, "
            "amount_paid, amount_due, reminders_sent, reminders_paused "
            "FROM invoice_status ORDER BY 1"
        ).fetchall()
        keys = con.execute(
            "SELECT invoice_number, buyer_key, seller_timezone, paid_at IS NOT NULL "
            "FROM invoices ORDER BY 1"
        ).fetchall()
        charges = con.execute("SELECT amount, purpose FROM charges").fetchall()
    assert versions == list(range(1, latest_version() + 1))
    assert status == [
        # a partial payment of unknown size: nothing known paid yet, all still due
        ("TH1-2026-000001", "sent", 1, Decimal("0.030000"), "partial", Decimal("0.00"),
         Decimal("107.00"), 0, False),
        # paid: the whole total counts as paid, nothing due
        ("TH1-2026-000002", "waiting", 0, Decimal("0"), "paid", Decimal("214.00"),
         Decimal("0.00"), 0, False),
    ]  # fmt: skip
    assert keys == [
        ("TH1-2026-000001", "tax:TH:0105550000019:00000", "", False),
        ("TH1-2026-000002", "name:TH:khun somchai", "", True),
    ]
    assert charges == [(Decimal("0.030000"), "on_issue")]


def test_a_new_ledger_and_an_upgraded_one_have_the_same_columns(tmp_path):
    upgraded = Ledger(old_ledger(tmp_path))
    upgraded.migrate()
    fresh = Ledger(tmp_path / "new.duckdb")
    fresh.migrate()

    def columns(ledger: Ledger) -> list[tuple[str, str, str]]:
        with ledger.connect(read_only=True) as con:
            return con.execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "ORDER BY table_name, column_name"
            ).fetchall()

    assert columns(upgraded) == columns(fresh)


def test_a_ledger_from_before_the_email_channel_gets_its_buyers_addresses(tmp_path):
    from courier.ledger import migrations

    path = old_ledger(tmp_path)
    with duckdb.connect(str(path)) as con:  # the release with migrations 1 and 2 only
        assert migrations.apply_migrations(con, up_to=2) == [1, 2]
        for number, email in (
            ("TH1-2026-000001", " AP@Example.co.th"),
            ("TH1-2026-000002", "see contract"),
        ):
            con.execute(
                "UPDATE invoices SET record_json = json_merge_patch(record_json, ?) "
                "WHERE invoice_number = ?",
                [f'{{"buyer": {{"email": "{email}"}}}}', number],
            )

    ledger = Ledger(path)
    assert ledger.migrate() == [3, 4]
    with ledger.connect(read_only=True) as con:
        rows = con.execute(
            "SELECT invoice_number, buyer_email, email_status, email_reason, email_masked "
            "FROM invoices ORDER BY 1"
        ).fetchall()
        shown = con.execute(
            "SELECT email_masked, email_status FROM invoice_status ORDER BY invoice_number"
        ).fetchall()
    assert rows == [
        ("TH1-2026-000001", "AP@example.co.th", "ok", "", "A•••@•••.th"),
        (
            "TH1-2026-000002",
            None,
            "invalid",
            "Invalid e-mail address (one address per buyer)",
            "•••",
        ),
    ]
    assert shown == [("A•••@•••.th", "ok"), ("•••", "invalid")]
    with ledger.connect() as con:  # an e-mail intent has an address, and no number
        con.execute(
            "INSERT INTO messages (idempotency_key, invoice_number, purpose, requested_by, "
            "channel, to_e164, to_address, destination_country, body, encoding, segments, "
            "unit_price, amount, currency, status, created_at, updated_at) VALUES ('k', "
            "'TH1-2026-000001', 'on_issue', 't', 'email', NULL, 'AP@example.co.th', 'TH', "
            "'b', 'utf-8', 0, 0, 0, 'USD', 'pending', now(), now())"
        )


def test_an_outbox_from_before_email_sending_keeps_its_rows_and_gains_the_mail_back(tmp_path):
    """Migration 4 on a ledger of the release with migrations 1 to 3: its pending row is
    still there to reconcile, and the e-mail's sender, copy and the mail that comes back
    have their places."""
    from courier.ledger import migrations

    path = old_ledger(tmp_path)
    with duckdb.connect(str(path)) as con:
        assert migrations.apply_migrations(con, up_to=3) == [1, 2, 3]
        con.execute(
            "INSERT INTO messages (idempotency_key, invoice_number, purpose, requested_by, "
            "channel, to_e164, destination_country, body, encoding, segments, unit_price, "
            "amount, currency, status, created_at, updated_at) VALUES ('TH1-2026-000001:x', "
            "'TH1-2026-000001', 'x', 't', 'sms', '+66812345678', 'TH', 'b', 'GSM-7', 1, 0, "
            "0, 'USD', 'pending', now(), now())"
        )
    ledger = Ledger(path)
    assert ledger.migrate() == [4]
    (row,) = ledger.pending_intents()
    assert row["idempotency_key"] == "TH1-2026-000001:x"
    assert row["from_address"] is None and row["cc_address"] is None
    with ledger.connect(read_only=True) as con:
        for table in ("inbound_emails", "etax_timestamps"):
            assert con.execute(f"SELECT count(*) FROM {table}").fetchall() == [(0,)]
        assert con.execute("SELECT count(*) FROM bounced_addresses").fetchall() == [(0,)]
