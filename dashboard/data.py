"""Where the dashboard's data comes from — the one place to change it.

The page reads three of the ledger's views — ``invoice_status``, ``charges`` and ``runs`` —
from the Parquet snapshots the writers publish (``courier.snapshot``), so it never holds
the DuckDB file while a run writes it. A read is shared by every session until a new
snapshot lands (its files' modification times are the cache key).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from courier import screens
from courier.ledger import Ledger
from courier.snapshot import read_snapshot, snapshot_exists, snapshot_version, try_publish_snapshot

VIEWS = ("invoice_status", "charges", "runs")


def read_view(ledger_path: Path, view: str) -> pd.DataFrame:
    """One view of the ledger as a DataFrame (``charges`` with exact ``Decimal`` amounts;
    the others with DECIMAL as float, for display)."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}")
    return read_snapshot(ledger_path, view, exact=view == "charges")


def ensure_snapshot(ledger_path: Path) -> None:
    """A ledger written before snapshots existed has none yet: publish one (this opens the
    ledger as a writer would, briefly, waiting its turn)."""
    if ledger_path.exists() and not snapshot_exists(ledger_path):
        try_publish_snapshot(Ledger(ledger_path))


@st.cache_resource(show_spinner=False, max_entries=8)
def _cached(ledger_path: str, view: str, version: tuple[int, ...]) -> pd.DataFrame:
    frame = read_view(Path(ledger_path), view)
    if view == "invoice_status" and not frame.empty:
        frame = frame.sort_values(
            ["issued_at", "invoice_number"], ascending=[False, True], kind="stable"
        ).reset_index(drop=True)
    return frame


def load(ledger_path: Path, view: str) -> pd.DataFrame:
    """The view as last published, ``invoice_status`` newest first. Shared by every
    session: never mutate it."""
    return _cached(str(ledger_path), view, snapshot_version(ledger_path))


@st.cache_resource(show_spinner=False, max_entries=8)
def _cached_options(ledger_path: str, version: tuple[int, ...]) -> screens.FilterOptions:
    return screens.filter_options(_cached(ledger_path, "invoice_status", version))


def filter_options(ledger_path: Path) -> screens.FilterOptions:
    """The sidebar's choices (sellers, statuses, reasons, first and last day) of the last
    published snapshot, computed once per snapshot."""
    return _cached_options(str(ledger_path), snapshot_version(ledger_path))
