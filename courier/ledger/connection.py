"""The ledger file and its short connections (lock-aware), and migrating it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import duckdb

from courier.ledger.migrations import migrate

#: How long to keep retrying when another process holds the file (seconds).
LOCK_WAIT_S = 30.0
_LOCK_RETRY_SLEEP_S = 0.05
#: How often a transaction is run again after a write-write conflict (see ``transaction``).
CONFLICT_ATTEMPTS = 20
_CONFLICT_SLEEP_S = 0.02

T = TypeVar("T")

# Two threads of one process share DuckDB's database instance, so two migrations at once
# conflict ("Catalog write-write conflict" on the views); they take turns. Processes
# already do: only one can hold the file read-write.
_MIGRATE_LOCK = threading.Lock()


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


def count_rows(con: duckdb.DuckDBPyConnection, table: str) -> int:
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()
    return int(rows[0][0])


class LedgerFile:
    """The ledger file. Each call opens a short connection unless inside ``holding()``."""

    def __init__(self, path: Path, lock_wait_s: float = LOCK_WAIT_S) -> None:
        self.path = path
        self.lock_wait_s = lock_wait_s  # a screen waits less than a run step
        # Per thread: a connection refuses a second call while busy, so a receipt arriving
        # on the receiver's thread mid-batch must open its own, not borrow the batch's.
        self._local = threading.local()

    @property
    def _held(self) -> duckdb.DuckDBPyConnection | None:
        return getattr(self._local, "held", None)

    @_held.setter
    def _held(self, con: duckdb.DuckDBPyConnection | None) -> None:
        self._local.held = con

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Keep one connection for a batch of calls on this thread (opening one costs ~10 ms)."""
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

    def transaction(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run ``work`` in one transaction, run again when another connection of this
        process changed the same rows first: DuckDB's concurrency is optimistic, so two
        threads writing one row (the sender recording a send, the receiver recording that
        e-mail's bounce) make one of them fail with "Conflict on update". The loser rolls
        back and tries again on the new state; processes never meet here (the file lock
        serialises them)."""
        for attempt in range(CONFLICT_ATTEMPTS):
            with self.connect() as con:
                con.execute("BEGIN TRANSACTION")
                try:
                    result = work(con)
                    con.execute("COMMIT")
                    return result
                except duckdb.TransactionException as error:
                    con.execute("ROLLBACK")
                    if "conflict" not in str(error).lower() or attempt == CONFLICT_ATTEMPTS - 1:
                        raise
                except Exception:
                    con.execute("ROLLBACK")
                    raise
            time.sleep(_CONFLICT_SLEEP_S * (attempt + 1))
        raise AssertionError("unreachable")  # the loop returns or raises

    def migrate(self) -> list[int]:
        """Bring the file up to the newest schema (``courier.ledger.migrations``); returns
        the migration numbers applied now (none when it is current)."""
        with _MIGRATE_LOCK, self.connect() as con:
            return migrate(con)
