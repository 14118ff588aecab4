"""Formatting every screen module shares: Bangkok time, text cells, exact money, and
columns a snapshot older than them lacks."""

from __future__ import annotations

from decimal import Decimal
from typing import Final

import pandas as pd

#: Dates and times on screen (and "today" for "already sent today") are Bangkok time,
#: where the finance team works.
DISPLAY_TZ: Final = "Asia/Bangkok"


def to_local(series: pd.Series) -> pd.Series:
    """Timestamps (any tz, or naive UTC) as Bangkok time."""
    return pd.to_datetime(series, utc=True).dt.tz_convert(DISPLAY_TZ)


def as_text(series: pd.Series) -> pd.Series:
    return series.fillna("").astype(str)


def as_money(values: pd.Series) -> pd.Series:
    return values.map(lambda v: f"{Decimal(str(v)):,.2f}" if pd.notna(v) else "").astype(object)


def column(frame: pd.DataFrame, name: str, default: object = None) -> pd.Series:
    """``frame[name]``, or ``default`` everywhere for a snapshot older than the column."""
    if name in frame:
        return frame[name]
    return pd.Series(default, index=frame.index, dtype=object)
