"""Read-only snapshots of the ledger for the dashboard: Parquet files beside the ledger.

DuckDB allows one read-write process *or* many readers, never both: a reader opening the
ledger while a run holds it gets "Could not set lock on file". So the dashboard never opens
the ledger. The writer side (each Prefect task, each dashboard action) calls
:func:`publish_snapshot` after it wrote; that exports the ``invoice_status`` and ``charges``
views and the ``runs`` table to ``<ledger>.snapshot/<name>.parquet``. Each file is written
under a temporary name and renamed over the old one (``os.replace``, atomic on POSIX), so a
reader sees the old file or the new one, never a torn one. :func:`read_snapshot` reads them
with an in-memory DuckDB: no lock on the ledger, ever.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import Final

import duckdb
import pandas as pd

from courier.ledger import Ledger
from courier.ledger.migrations import create_schema

log = logging.getLogger(__name__)

#: What is exported, in this order (each name is a view or table of the ledger).
SNAPSHOT_NAMES: Final = ("invoice_status", "charges", "runs")

# One publisher at a time per process: two threads exporting at once could otherwise rename
# an older export over a newer one. Across processes the ledger's write lock does the same
# (the rename happens while the read-write connection is open).
_PUBLISH_LOCK = threading.Lock()

_READ_ATTEMPTS = 3


def snapshot_dir(ledger_path: Path) -> Path:
    """``data/ledger.duckdb`` -> ``data/ledger.duckdb.snapshot/``."""
    return ledger_path.with_name(ledger_path.name + ".snapshot")


def snapshot_path(ledger_path: Path, name: str) -> Path:
    _check_name(name)
    return snapshot_dir(ledger_path) / f"{name}.parquet"


def publish_snapshot(ledger: Ledger) -> None:
    """Export ``invoice_status``, ``charges`` and ``runs`` beside the ledger, each file
    replaced atomically (a reader sees a whole file, old or new), one after another.

    Call it from the writer side after a write (it opens the ledger read-write, or reuses
    the connection of ``ledger.holding()``). ~0.3 s at 100k invoices.
    """
    target = snapshot_dir(ledger.path)
    target.mkdir(parents=True, exist_ok=True)
    with _PUBLISH_LOCK, ledger.connect() as con:
        _remove_stale_temps(target)
        for name in SNAPSHOT_NAMES:
            final = target / f"{name}.parquet"
            temp = target / f".{name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
            try:
                con.execute(
                    f"COPY (SELECT * FROM {name}) TO '{_sql_str(temp)}' "
                    "(FORMAT parquet, COMPRESSION snappy)"
                )
                os.replace(temp, final)
            finally:
                temp.unlink(missing_ok=True)


def _remove_stale_temps(target: Path, older_than_s: float = 60.0) -> None:
    """Temporary files a killed publisher left (publishers take turns, so an old one is
    nobody's)."""
    cutoff = time.time() - older_than_s
    for temp in target.glob(".*.tmp"):
        with suppress(OSError):
            if temp.stat().st_mtime < cutoff:
                temp.unlink()


def try_publish_snapshot(ledger: Ledger) -> float | None:
    """:func:`publish_snapshot` that never raises (a snapshot is a view aid, never a reason
    for a step to fail): seconds it took, or None if it failed (logged)."""
    started = time.perf_counter()
    try:
        publish_snapshot(ledger)
    except Exception:
        log.warning("could not publish the ledger snapshot of %s", ledger.path, exc_info=True)
        return None
    return time.perf_counter() - started


class ThrottledPublisher:
    """Publishes after writes, at most once per ``min_interval_s``, for a process that
    writes often (``courier receiver``: one write per delivery receipt). ``wrote()`` never
    blocks: the publish runs on a timer thread, and a write during the quiet period gets
    one trailing publish, so the last write always shows. ``close()`` flushes."""

    def __init__(self, ledger: Ledger, min_interval_s: float = 5.0) -> None:
        self.ledger = ledger
        self.min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._last = float("-inf")

    def wrote(self) -> None:
        with self._lock:
            if self._timer is not None:
                return  # a publish is already due; it will include this write
            delay = max(0.0, self._last + self.min_interval_s - time.monotonic())
            self._timer = threading.Timer(delay, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
            self._last = time.monotonic()
        try_publish_snapshot(self.ledger)

    def close(self) -> None:
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
            try_publish_snapshot(self.ledger)


def snapshot_exists(ledger_path: Path) -> bool:
    return all(snapshot_path(ledger_path, name).exists() for name in SNAPSHOT_NAMES)


def snapshot_version(ledger_path: Path) -> tuple[int, ...]:
    """Modification times (ns) of the snapshot files, 0 when missing: a cache key that
    changes whenever a new snapshot lands (e.g. for ``st.cache_data``)."""
    stamps = []
    for name in SNAPSHOT_NAMES:
        try:
            stamps.append(snapshot_path(ledger_path, name).stat().st_mtime_ns)
        except FileNotFoundError:
            stamps.append(0)
    return tuple(stamps)


def read_snapshot(ledger_path: Path, name: str, *, exact: bool = False) -> pd.DataFrame:
    """The last published ``name`` (``invoice_status``, ``charges`` or ``runs``).

    Reads the Parquet file with an in-memory DuckDB, so the ledger file is never opened.
    Before the first publish it is an empty frame with the view's columns and types.
    Types: timestamps with time zone (UTC), dates as ``datetime64``, DECIMAL as float64
    (``exact=True``: ``decimal.Decimal`` objects), text as pandas strings. ~0.1 s for
    100k invoices.
    """
    path = snapshot_path(ledger_path, name)
    for attempt in range(_READ_ATTEMPTS):
        try:
            with _pinned(path) as pinned, duckdb.connect(":memory:") as con:
                return _frame(con, f"read_parquet('{_sql_str(pinned)}')", exact)
        except (FileNotFoundError, NotADirectoryError):  # not published yet
            return empty_frame(name, exact=exact)
        except duckdb.Error:
            if attempt == _READ_ATTEMPTS - 1:
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")


@contextmanager
def _pinned(path: Path) -> Iterator[str]:
    """A name for the file as it is *now*, however often it is replaced meanwhile.

    DuckDB opens a Parquet file more than once per query (schema, then data); a publish
    renaming a new file in between would pair one file's footer with the other's pages.
    On Linux ``/proc/self/fd/N`` of a descriptor opened here always reaches the same file.
    Elsewhere the plain path is used (and :func:`read_snapshot` retries a failed read).
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        pinned = f"/proc/self/fd/{fd}"
        yield pinned if os.path.exists(pinned) else str(path)
    finally:
        os.close(fd)


def empty_frame(name: str, *, exact: bool = False) -> pd.DataFrame:
    """No rows, the columns and dtypes of :func:`read_snapshot` for ``name``."""
    return _empty_frame(name, exact).copy()


@cache
def _empty_frame(name: str, exact: bool) -> pd.DataFrame:
    _check_name(name)
    with duckdb.connect(":memory:") as con:
        create_schema(con)
        return _frame(con, name, exact)


def _frame(con: duckdb.DuckDBPyConnection, source: str, exact: bool) -> pd.DataFrame:
    """``SELECT * FROM source`` as pandas through Arrow (3x faster than ``.df()``), with
    DECIMAL as float64 unless ``exact`` and DATE as ``datetime64``."""
    relation = con.sql(f"SELECT * FROM {source}")
    columns = []
    for column, kind in zip(relation.columns, relation.types, strict=True):
        quoted = '"' + column.replace('"', '""') + '"'
        type_name = str(kind)
        if type_name.startswith("DECIMAL") and not exact:
            columns.append(f"CAST({quoted} AS DOUBLE) AS {quoted}")
        elif type_name == "DATE":
            columns.append(f"CAST({quoted} AS TIMESTAMP) AS {quoted}")
        else:
            columns.append(quoted)
    table = con.sql(f"SELECT {', '.join(columns)} FROM {source}").to_arrow_table()
    return table.to_pandas()


def _check_name(name: str) -> None:
    if name not in SNAPSHOT_NAMES:
        raise ValueError(f"unknown snapshot {name!r}; one of {', '.join(SNAPSHOT_NAMES)}")


def _sql_str(path: Path | str) -> str:
    return str(path).replace("'", "''")
