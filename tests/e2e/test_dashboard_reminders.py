"""The dashboard's reminders end to end (Streamlit's AppTest -> Prefect flows -> ledger and
sandboxes): the Reminders tab previews what the next run sends and costs; a pause made
there stops a buyer's reminders, audited; "send now" sends a step that the scheduled run
then does not repeat; one invoice's panel shows its history and next step."""

from __future__ import annotations

import getpass
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from flows.nightly import nightly_send
from flows.reminders import reminders
from tests.e2e.test_reminders_flow import due_on, textable
from tests.support.browser import live_stack

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard/app.py")
SEVEN = "reminder:overdue-chase:7-days-after"
USER = f"{getpass.getuser()}@localhost"  # who the open-access dashboard records


def rows(path: Path, sql: str, *params: object) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def run(app: AppTest) -> AppTest:
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def button(app: AppTest, label: str):
    matches = [b for b in app.button if b.label == label]
    assert matches, f"no button {label!r} among {[b.label for b in app.button]}"
    return matches[0]


def text_input(app: AppTest, key: str):
    return next(t for t in app.text_input if t.key == key)


def metric(app: AppTest, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


@pytest.fixture
def overdue_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Three Thai invoices due 8 days ago (Bangkok): their 7-days-overdue step fell due
    yesterday at 09:00 and is within grace, whatever the hour the test runs."""
    today = datetime.now(ZoneInfo("Asia/Bangkok")).date()
    th = textable()["TH"]
    invoices = [due_on(th[i], today - timedelta(days=8)) for i in range(3)]
    with live_stack(tmp_path, monkeypatch, 0, invoices=invoices) as stack:
        monkeypatch.setenv("COURIER_REMINDER_RULES_PATH", str(REPO / "data/reminder_rules.yaml"))
        for key in ("COURIER_OIDC_CLIENT_ID", "COURIER_RUN_BUDGET", "COURIER_SENDERS"):
            monkeypatch.delenv(key, raising=False)
        assert nightly_send()["run_sms_sent"] == 3
        yield stack, [i.number for i in invoices]


@pytest.mark.timeout(600)
def test_preview_pause_and_send_now_from_the_dashboard(overdue_stack):
    stack, (a, b, c) = overdue_stack
    app = run(AppTest.from_file(APP, default_timeout=120))
    app.session_state["tab"] = "Reminders"
    run(app)
    rules = app.dataframe[0].value
    assert "Overdue chase (7/14/21 days)" in set(rules["Rule"])
    assert metric(app, "Reminders the next run sends") == "3"
    preview = app.dataframe[1].value
    assert set(preview["Invoice"]) == {a, b, c}
    quoted = sum(Decimal(cost.split()[0]) for cost in preview["Cost"])
    assert metric(app, "Quoted cost") == f"{quoted} USD"
    assert all("•" in to for to in preview["To"])  # numbers masked

    # Pause b's buyer: audited, and the preview no longer counts it.
    text_input(app, "pause_invoice").input(b)
    app.radio[0].set_value("Every invoice of its buyer")
    text_input(app, "pause_reason").input("Paying by instalments, agreed by phone")
    button(app, "Pause reminders").click()
    run(app)
    assert any(f"Reminders paused for the buyer of {b}" in s.value for s in app.success)
    pause = rows(stack.ledger_path, "SELECT scope, reason, paused_by FROM reminder_pauses")
    assert pause == [("buyer", "Paying by instalments, agreed by phone", USER)]
    assert metric(app, "Reminders the next run sends") == "2"

    # Send a's 7-day step now: sent once, by the person; the scheduled run skips it.
    text_input(app, "send_now_invoice").input(a)
    step = next(o for o in app.selectbox[-1].options if "7 days after" in o)
    app.selectbox[-1].set_value(step)
    button(app, "Send now").click()
    run(app)
    assert any(f"Reminder sent for {a}" in s.value for s in app.success), [
        m.value for m in [*app.warning, *app.error, *app.info]
    ]
    assert rows(
        stack.ledger_path, "SELECT requested_by FROM messages WHERE purpose = ?", SEVEN
    ) == [(USER,)]
    summary = reminders()
    assert summary["reminders_sent"] == 1  # c only: a was sent by hand, b's buyer paused
    sent = Counter(
        r[0]
        for r in rows(
            stack.ledger_path, "SELECT invoice_number FROM messages WHERE purpose = ?", SEVEN
        )
    )
    assert sent == Counter({a: 1, c: 1})

    # One invoice's panel on the Send to Buyer tab: its history and the next step.
    app.session_state["tab"] = "Send to Buyer"
    run(app)
    shown = list(app.dataframe[0].value["Invoice"])
    app.session_state[app.dataframe[0].key] = {
        "selection": {"rows": [shown.index(a)], "columns": [], "cells": []}
    }
    run(app)
    history = next(d.value for d in app.dataframe if "Step" in d.value.columns)
    by_status = history.set_index("Status")
    assert sorted(by_status.index) == ["sent", "skipped"]
    assert by_status.loc["sent", "Step"].endswith("7 days after the due date")
    assert by_status.loc["sent", "By"] == USER
    assert by_status.loc["sent", "Charge"].endswith(" USD")
    # The courtesy step (3 days before due) fell due 11 days ago: recorded, never sent late.
    assert by_status.loc["skipped", "Reason"].startswith("Window passed")
    assert any(
        c.value.startswith("Next: Overdue chase (7/14/21 days): 14 days after the due date")
        for c in app.caption
    )
