"""The "Analytics" tab: the delivery funnel, failures by reason, charges over time, and
the run history with links to the Prefect UI."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final, Literal

import pandas as pd

from courier.screens._format import DISPLAY_TZ, as_text, to_local

FUNNEL_STAGES: Final = ("Pulled", "Valid phone", "Uploaded", "Sent", "Delivered")


def delivery_funnel(status: pd.DataFrame) -> pd.DataFrame:
    """Invoices reaching each stage; each stage counts only those that passed the ones before."""
    valid = status["phone_status"] == "ok"
    uploaded = valid & (status["document_status"] == "uploaded")
    sent = uploaded & (status["sms_status"] == "sent")
    delivered = sent & (status["delivery_status"] == "delivered")
    counts = [len(status), int(valid.sum()), int(uploaded.sum()), int(sent.sum())]
    counts.append(int(delivered.sum()))
    return pd.DataFrame({"stage": list(FUNNEL_STAGES), "invoices": counts})


def failures_by_reason(status: pd.DataFrame) -> pd.DataFrame:
    """Invoices not (yet) sent, by the reason a person reads; most frequent first."""
    reason = as_text(status["reason"])
    failing = status[(status["sms_status"] != "sent") & (reason != "")]
    counts = failing.groupby("reason").size().sort_values(ascending=False, kind="stable")
    return pd.DataFrame({"reason": counts.index.astype(str), "invoices": counts.to_numpy()})


ChargeGrouping = Literal["day", "month", "seller", "country"]


def charges_by(charges: pd.DataFrame, by: ChargeGrouping) -> pd.DataFrame:
    """SMS charges per day / month (Bangkok time), seller or destination country:
    ``<by>, currency, messages, segments, amount`` with ``amount`` an exact ``Decimal``."""
    frame = charges.copy()
    if by in ("day", "month"):
        local = to_local(frame["charged_at"])
        frame[by] = local.dt.strftime("%Y-%m-%d" if by == "day" else "%Y-%m")
    elif by == "seller":
        frame[by] = as_text(frame["seller_name"])
    else:
        frame[by] = as_text(frame["destination_country"])
    if frame.empty:
        return pd.DataFrame(columns=[by, "currency", "messages", "segments", "amount"])
    frame["amount"] = frame["amount"].map(lambda v: Decimal(str(v)))
    grouped = frame.groupby([by, "currency"], as_index=False).agg(
        messages=("amount", "size"),
        segments=("segments", "sum"),
        amount=("amount", lambda a: sum(a, Decimal(0))),
    )
    return grouped.sort_values(by, kind="stable").reset_index(drop=True)


def as_chart(table: pd.DataFrame, key: str) -> pd.DataFrame:
    """A ``charges_by`` table for ``st.bar_chart``/``st.line_chart`` (floats, one column
    per currency, indexed by ``key``). Charts only: totals stay exact in the tables."""
    if table.empty:
        return pd.DataFrame()
    values = table.assign(amount=table["amount"].map(float))
    return values.pivot_table(index=key, columns="currency", values="amount", aggfunc="sum")


def prefect_ui_base(env: Mapping[str, str]) -> str | None:
    """The Prefect UI's base URL: ``PREFECT_UI_URL``, else ``PREFECT_API_URL`` without
    its ``/api`` suffix; None when neither is set (an ephemeral server has no UI to link)."""
    ui = env.get("PREFECT_UI_URL", "").strip()
    if ui:
        return ui.rstrip("/")
    api = env.get("PREFECT_API_URL", "").strip().rstrip("/")
    if api:
        return api.removesuffix("/api")
    return None


def _summary(text: Any) -> dict[str, Any]:
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def run_history(runs: pd.DataFrame, ui_base: str | None) -> pd.DataFrame:
    """One row per run, newest first, with a link to the run in the Prefect UI."""
    columns = ["Started", "Flow", "Finished", "Result", "SMS sent", "Charges", "Run", "Prefect"]
    if runs.empty:
        return pd.DataFrame(columns=columns)
    frame = runs.assign(_started=pd.to_datetime(runs["started_at"], utc=True)).sort_values(
        "_started", ascending=False, kind="stable"
    )
    summaries = [_summary(s) for s in frame.get("summary_json", pd.Series(dtype=object))]

    def result(summary: dict[str, Any]) -> str:
        inner = summary.get("result")
        if isinstance(inner, dict):
            if inner.get("refused"):
                return f"refused: {inner['refused']}"
            if inner.get("error"):
                return f"error: {inner['error']}"
            counts = {k: v for k, v in inner.items() if isinstance(v, int)}
            return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        if summary.get("refused"):
            return f"refused: {summary['refused']}"
        outcomes = summary.get("sms_outcomes")
        if isinstance(outcomes, dict):
            return ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) or "nothing to send"
        return ""

    finished = pd.to_datetime(frame["finished_at"], utc=True).dt.tz_convert(DISPLAY_TZ)
    run_ids = frame["run_id"].astype(str)
    return pd.DataFrame(
        {
            "Started": frame["_started"].dt.tz_convert(DISPLAY_TZ).dt.strftime("%Y-%m-%d %H:%M"),
            "Flow": as_text(frame["flow"]),
            "Finished": finished.dt.strftime("%Y-%m-%d %H:%M").fillna("running or died"),
            "Result": [result(s) for s in summaries],
            "SMS sent": [int(s.get("run_sms_sent", 0) or 0) for s in summaries],
            "Charges": [str(s.get("run_charges", "")) for s in summaries],
            "Run": run_ids,
            "Prefect": (
                [f"{ui_base}/runs/flow-run/{r}" for r in run_ids]
                if ui_base
                else [None] * len(run_ids)
            ),
        },
        columns=columns,
    ).reset_index(drop=True)


def to_csv(frame: pd.DataFrame) -> bytes:
    """CSV for "Download CSV": exact decimals (``Decimal`` is written as its text)."""
    return frame.to_csv(index=False).encode("utf-8")
