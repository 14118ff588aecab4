"""The ledger on a real DuckDB file: outbox claims are once-only, charges follow acceptance."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from courier.ledger import Ledger
from courier.pulling import invoice_rows, parse_records


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger(tmp_path / "ledger.duckdb")
    ledger.migrate()
    return ledger


def record(number: str, phone: str) -> dict:
    return {
        "number": number,
        "issued_at": "2026-11-20T10:00:00+07:00",
        "due_date": "2026-12-20",
        "currency": "THB",
        "vat_rate": "7",
        "seller": {"name": "Seller", "address": {"line1": "1 Road", "country": "TH"}},
        "buyer": {
            "name": "บริษัท ทดสอบ จำกัด",
            "phone": phone,
            "address": {"line1": "2 Road", "country": "TH"},
        },
        "lines": [{"description": "x", "quantity": "1", "unit_price": "100.00"}],
    }


def intent(key: str = "INV-1:on_issue") -> dict:
    return {
        "idempotency_key": key,
        "invoice_number": "INV-1",
        "purpose": "on_issue",
        "requested_by": "test",
        "to_e164": "+66812345678",
        "destination_country": "TH",
        "body": "hello",
        "encoding": "GSM-7",
        "segments": 1,
        "unit_price": Decimal("0.03"),
        "amount": Decimal("0.03"),
        "currency": "USD",
    }


def load(ledger: Ledger, *records: dict) -> None:
    batch = parse_records(records)
    ledger.insert_invoices(invoice_rows(batch.invoices, "test", datetime.now(UTC)))


def test_invoices_insert_once_and_phone_statuses_read_as_people_expect(ledger):
    load(
        ledger,
        record("INV-1", "081-234-5678"),
        record("INV-2", "66236578901"),
        record("INV-3", ""),
        record("INV-4", "02-123-4567"),
    )
    load(ledger, record("INV-1", "081-234-5678"))  # pulled again: no second row
    with ledger.connect() as con:
        rows = dict(con.execute("SELECT invoice_number, reason FROM invoice_status").fetchall())
        masked = con.execute(
            "SELECT phone_masked FROM invoice_status WHERE invoice_number = 'INV-1'"
        ).fetchall()[0][0]
    assert rows == {
        "INV-1": "Document not uploaded yet",
        "INV-2": "Invalid telephone number",
        "INV-3": "No telephone number",
        "INV-4": "Not a mobile number",
    }
    assert "812345678" not in masked and masked


def test_an_intent_is_claimed_once_and_its_charge_written_once(ledger):
    load(ledger, record("INV-1", "081-234-5678"))
    assert ledger.claim_intent(intent()) is True
    assert ledger.claim_intent(intent()) is False
    charge = {
        "invoice_number": "INV-1",
        "destination_country": "TH",
        "segments": 1,
        "unit_price": Decimal("0.03"),
        "amount": Decimal("0.03"),
        "currency": "USD",
    }
    ledger.record_accepted("INV-1:on_issue", "SM" + "0" * 32, "queued", charge, 1)
    ledger.record_accepted("INV-1:on_issue", "SM" + "0" * 32, "queued", charge, 1)
    with ledger.connect() as con:
        charges = con.execute("SELECT amount FROM charges").fetchall()
        status = con.execute(
            "SELECT sms_status, sends, total_charges FROM invoice_status"
        ).fetchall()
    assert charges == [(Decimal("0.030000"),)]
    assert status == [("sent", 1, Decimal("0.030000"))]


def test_a_pending_intent_survives_a_new_connection_for_reconciliation(ledger):
    ledger.claim_intent(intent("INV-9:on_issue"))
    reopened = Ledger(ledger.path)
    pending = reopened.pending_intents()
    assert [row["idempotency_key"] for row in pending] == ["INV-9:on_issue"]
    assert pending[0]["amount"] == Decimal("0.03")


def test_a_writer_and_a_reader_take_turns_instead_of_failing(ledger):
    with ledger.connect(read_only=False) as con:
        con.execute("SELECT 1").fetchall()
    with ledger.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM invoices").fetchall() == [(0,)]


def test_threads_migrating_one_ledger_at_once_all_succeed(tmp_path):
    """Two runs of one process start together (each builds its services, each migrates):
    neither may fail with DuckDB's catalog write-write conflict."""
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "ledger.duckdb"
    Ledger(path).migrate()  # the second migration replaces the views: the conflicting case

    def migrate(_: int) -> None:
        Ledger(path).migrate()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(migrate, range(32)))
    with Ledger(path).connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM invoice_status").fetchall() == [(0,)]


def test_a_batch_holding_its_connection_does_not_lend_it_to_another_thread(ledger):
    """The receipts receiver runs on its own thread beside a send batch that holds one
    connection; were the connection shared, a receipt arriving mid-batch would hit
    DuckDB's "connection is busy with another call". Each thread gets its own."""
    import threading

    seen: dict[str, object] = {}
    batch_holding = threading.Event()
    receipt_done = threading.Event()

    def receipt() -> None:
        batch_holding.wait(5)
        with ledger.connect() as con:
            seen["receipt"] = con
            con.execute("SELECT count(*) FROM messages").fetchall()
        receipt_done.set()

    other = threading.Thread(target=receipt)
    other.start()
    with ledger.holding(), ledger.connect() as con:
        seen["batch"] = con
        batch_holding.set()
        assert receipt_done.wait(5), "the other thread's call did not finish"
        with ledger.connect() as same:  # this thread still reuses its held connection
            assert same is con
    other.join(5)
    assert seen["receipt"] is not seen["batch"]


def test_a_ledger_held_by_another_process_is_busy_after_its_own_wait(tmp_path):
    """A screen's ledger gives up after its short wait (the page then says "busy")
    instead of a run step's 30 s."""
    import subprocess
    import sys
    import time

    from courier.ledger import LedgerBusy

    path = tmp_path / "ledger.duckdb"
    Ledger(path).migrate()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]);"
            " print('held', flush=True); time.sleep(30)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(LedgerBusy):
            Ledger(path, lock_wait_s=0.5).invoice_phone("INV-1")
        assert time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()


def test_two_threads_writing_one_outbox_row_both_land(ledger):
    """The sender records a send while the receiver (another thread) records that
    e-mail's bounce: DuckDB fails one with "Conflict on update"; it is run again on the
    new state, so neither write is lost."""
    import threading

    from courier.ledger import AcceptedSend

    ledger.claim_intents([intent()])
    changed, release = threading.Event(), threading.Event()

    def bounce_in_flight() -> None:
        with ledger.connect() as con:
            con.execute("BEGIN TRANSACTION")
            con.execute("UPDATE messages SET provider_status = 'bounced'")
            changed.set()
            release.wait(5)
            con.execute("COMMIT")

    other = threading.Thread(target=bounce_in_flight)
    other.start()
    assert changed.wait(5)
    threading.Timer(0.2, release.set).start()  # commits while the sender is trying
    charge = {
        "invoice_number": "INV-1",
        "destination_country": "TH",
        "segments": 1,
        "unit_price": Decimal("0.03"),
        "amount": Decimal("0.03"),
        "currency": "USD",
    }
    ledger.record_outcomes([AcceptedSend("INV-1:on_issue", "SM1", "queued", 1, charge)], [])
    other.join(5)
    with ledger.connect() as con:
        assert con.execute("SELECT status, provider_status FROM messages").fetchall() == [
            ("accepted", "bounced")
        ]
        assert con.execute("SELECT count(*) FROM sms_charges").fetchall() == [(1,)]
