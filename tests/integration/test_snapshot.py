"""Snapshots: the dashboard reads Parquet copies of the ledger's views, never the ledger file
(real DuckDB files; a second process holds the ledger read-write like a running flow)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from courier import jobs
from courier.invoice_io import invoice_to_dict
from courier.ledger import Ledger
from courier.pulling import invoice_rows, parse_records
from courier.sample_data import generate_invoices
from courier.snapshot import (
    SNAPSHOT_NAMES,
    ThrottledPublisher,
    empty_frame,
    publish_snapshot,
    read_snapshot,
    snapshot_dir,
    snapshot_exists,
    snapshot_version,
    try_publish_snapshot,
)
from tasks.steps import _run
from tests.support.sandbox_fixtures import ACCOUNT_SID, AUTH_TOKEN, DOCS_TOKEN

REPO = Path(__file__).resolve().parents[2]


def ledger_with(path: Path, count: int) -> Ledger:
    ledger = Ledger(path)
    ledger.migrate()
    batch = parse_records([invoice_to_dict(i) for i in generate_invoices(count=count)])
    ledger.insert_invoices(invoice_rows(batch.invoices, "test", datetime.now(UTC)))
    return ledger


def direct(ledger: Ledger, name: str) -> pd.DataFrame:
    with ledger.connect(read_only=True) as con:
        return con.execute(f"SELECT * FROM {name}").df()


def test_before_the_first_publish_a_snapshot_is_empty_with_the_views_columns(tmp_path):
    ledger = ledger_with(tmp_path / "ledger.duckdb", 5)
    assert not snapshot_exists(ledger.path)
    assert snapshot_version(ledger.path) == (0, 0, 0)
    for name in SNAPSHOT_NAMES:
        frame = read_snapshot(ledger.path, name)
        assert frame.empty
        assert list(frame.columns) == list(direct(ledger, name).columns)
    # No ledger at all: still an empty frame, and nothing is created.
    missing = tmp_path / "nowhere" / "ledger.duckdb"
    assert read_snapshot(missing, "invoice_status").empty
    assert not missing.parent.exists()
    with pytest.raises(ValueError, match="unknown snapshot"):
        read_snapshot(ledger.path, "invoices")


def test_a_published_snapshot_equals_the_ledgers_views(tmp_path):
    ledger = ledger_with(tmp_path / "ledger.duckdb", 40)
    ledger.start_run("run-1", "nightly-send")
    publish_snapshot(ledger)

    assert snapshot_exists(ledger.path)
    files = sorted(p.name for p in snapshot_dir(ledger.path).iterdir())
    assert files == ["charges.parquet", "invoice_status.parquet", "runs.parquet"]  # no temps
    status = read_snapshot(ledger.path, "invoice_status")
    expected = direct(ledger, "invoice_status")
    assert len(status) == 40
    assert list(status.columns) == list(expected.columns)
    key = "invoice_number"
    got = status.sort_values(key).reset_index(drop=True)
    want = expected.sort_values(key).reset_index(drop=True)
    for column in ("invoice_number", "phone_masked", "sms_status", "reason", "sends"):
        assert got[column].astype(str).tolist() == want[column].astype(str).tolist(), column
    assert (got["grand_total"] == want["grand_total"].astype(float)).all()
    assert (got["issued_at"] == want["issued_at"]).all()
    for name in SNAPSHOT_NAMES:  # the empty frame has the published types
        assert read_snapshot(ledger.path, name).dtypes.equals(empty_frame(name).dtypes), name
    assert read_snapshot(ledger.path, "runs")["run_id"].tolist() == ["run-1"]


def test_exact_money_reads_as_decimals(tmp_path):
    ledger = ledger_with(tmp_path / "ledger.duckdb", 5)
    publish_snapshot(ledger)
    exact = read_snapshot(ledger.path, "invoice_status", exact=True)
    want = dict(direct(ledger, "invoice_status")[["invoice_number", "grand_total"]].values)
    for number, total in zip(exact["invoice_number"], exact["grand_total"], strict=True):
        assert str(total) == f"{want[number]:.2f}"


def test_publishing_with_a_held_connection_and_the_version_moves(tmp_path):
    ledger = ledger_with(tmp_path / "ledger.duckdb", 5)
    with ledger.holding():
        publish_snapshot(ledger)
    first = snapshot_version(ledger.path)
    assert all(first)
    time.sleep(0.01)
    publish_snapshot(ledger)
    assert snapshot_version(ledger.path) != first


HOLD_WRITER = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])  # read-write: holds the file lock, like a running flow
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
    """
)


def test_the_snapshot_reads_while_another_process_writes_the_ledger(tmp_path):
    ledger = ledger_with(tmp_path / "ledger.duckdb", 10)
    publish_snapshot(ledger)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITER, str(ledger.path), "30"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        # Opening the ledger itself fails: this is what the dashboard must never do.
        with pytest.raises(duckdb.Error, match=r"(?i)lock"):
            duckdb.connect(str(ledger.path), read_only=True)
        assert len(read_snapshot(ledger.path, "invoice_status")) == 10
    finally:
        holder.kill()
        holder.wait()


PUBLISHER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from courier.ledger import Ledger
    from courier.snapshot import publish_snapshot
    ledger = Ledger(Path(sys.argv[1]))
    deadline = time.monotonic() + float(sys.argv[2])
    n = 0
    while time.monotonic() < deadline:
        with ledger.connect() as con:  # alternate between 300 and 200 invoices
            if n % 2 == 0:
                con.execute("CREATE OR REPLACE TABLE kept AS SELECT * FROM invoices "
                            "WHERE invoice_number IN (SELECT invoice_number FROM invoices "
                            "ORDER BY invoice_number LIMIT 100)")
                con.execute("DELETE FROM invoices WHERE invoice_number IN "
                            "(SELECT invoice_number FROM kept)")
            else:
                con.execute("INSERT INTO invoices SELECT * FROM kept")
        publish_snapshot(ledger)
        n += 1
    print(n, flush=True)
    """
)


def test_readers_see_the_old_or_the_new_snapshot_never_a_torn_one(tmp_path):
    ledger = ledger_with(tmp_path / "ledger.duckdb", 300)
    publish_snapshot(ledger)
    publisher = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, str(ledger.path), "4"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    sizes: list[int] = []
    errors: list[BaseException] = []

    def reader() -> None:
        while publisher.poll() is None:
            try:
                sizes.append(len(read_snapshot(ledger.path, "invoice_status")))
            except BaseException as error:
                errors.append(error)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    out, _ = publisher.communicate(timeout=60)
    for thread in threads:
        thread.join()
    assert publisher.returncode == 0
    assert not errors, errors[:3]
    assert int(out.strip()) >= 5, "the publisher barely ran"
    assert len(sizes) > 20
    assert set(sizes) <= {200, 300}
    assert set(sizes) == {200, 300}, "readers never saw a new snapshot"
    assert not list(snapshot_dir(ledger.path).glob("*.tmp"))


def test_a_snapshot_that_cannot_be_written_never_fails_the_writer(tmp_path):
    ledger = ledger_with(tmp_path / "ledger.duckdb", 3)
    snapshot_dir(ledger.path).write_text("not a folder")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger = logging.getLogger("courier.snapshot")
    logger.addHandler(handler)
    try:
        assert try_publish_snapshot(ledger) is None
    finally:
        logger.removeHandler(handler)
    assert any("could not publish the ledger snapshot" in r.getMessage() for r in records)
    assert read_snapshot(ledger.path, "invoice_status").empty


def test_each_task_step_publishes_after_it_wrote(tmp_path, monkeypatch):
    path = tmp_path / "ledger.duckdb"
    monkeypatch.chdir(tmp_path)
    for key, value in {
        "COURIER_LEDGER_PATH": str(path),
        "COURIER_PRICING_PATH": str(REPO / "data/pricing.csv"),
        "COURIER_SMS_ACCOUNT_SID": ACCOUNT_SID,
        "COURIER_SMS_AUTH_TOKEN": AUTH_TOKEN,
        "COURIER_DOCSTORE_TOKEN": DOCS_TOKEN,
    }.items():
        monkeypatch.setenv(key, value)

    def insert_two(services) -> int:
        batch = parse_records([invoice_to_dict(i) for i in generate_invoices(count=2)])
        return services.ledger.insert_invoices(invoice_rows(batch.invoices, "t", datetime.now(UTC)))

    assert _run(insert_two) == 2
    assert len(read_snapshot(path, "invoice_status")) == 2

    def fail_after_writing(services) -> None:
        services.ledger.start_run("half-way", "nightly-send")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _run(fail_after_writing)
    assert read_snapshot(path, "runs")["run_id"].tolist() == ["half-way"]  # committed, shown

    before = snapshot_version(path)
    assert len(_run(jobs.documents_due)) == 2
    assert snapshot_version(path) == before  # a step that only reads publishes nothing


def test_a_throttled_publisher_publishes_once_per_interval_and_the_last_write_shows(tmp_path):
    ledger = ledger_with(tmp_path / "ledger.duckdb", 3)
    publisher = ThrottledPublisher(ledger, min_interval_s=2.0)
    publisher.wrote()
    deadline = time.monotonic() + 10
    while not snapshot_exists(ledger.path) and time.monotonic() < deadline:
        time.sleep(0.02)
    first = snapshot_version(ledger.path)
    assert all(first)
    # A burst of writes within the interval: one trailing publish, after the interval.
    ledger.start_run("burst", "receiver")
    for _ in range(20):
        publisher.wrote()
    time.sleep(0.1)
    assert snapshot_version(ledger.path) == first  # not yet: the interval holds it
    # A publish replaces the files one after another: wait until every one is new, not
    # just the first (under load the gap is long enough to read the old "runs").
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        now == then for now, then in zip(snapshot_version(ledger.path), first, strict=True)
    ):
        time.sleep(0.02)
    assert read_snapshot(ledger.path, "runs")["run_id"].tolist() == ["burst"]
    # close() flushes a pending publish at once.
    ledger.finish_run("burst", {"ok": True})
    publisher.wrote()
    publisher.close()
    assert read_snapshot(ledger.path, "runs")["finished_at"].notna().all()


def test_a_publish_removes_what_a_killed_publisher_left(tmp_path):
    ledger = ledger_with(tmp_path / "ledger.duckdb", 3)
    publish_snapshot(ledger)
    stale = snapshot_dir(ledger.path) / ".invoice_status.999.dead.tmp"
    stale.write_bytes(b"half a parquet file")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    fresh = snapshot_dir(ledger.path) / ".charges.999.young.tmp"
    fresh.write_bytes(b"")
    publish_snapshot(ledger)
    assert not stale.exists()
    assert fresh.exists()  # too young to be sure nobody writes it
