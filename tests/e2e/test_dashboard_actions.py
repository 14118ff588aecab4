"""The dashboard's actions end to end: buttons -> Prefect flows (flows/actions.py) -> ledger
and sandboxes, driven through Streamlit's AppTest. Fix a number and send; a queued second
click sends nothing more; "Send All by SMS" charges exactly what its summary said; a row is
sent, then resent, by e-mail."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from courier import jobs
from courier.settings import load_settings
from courier.wiring import build_services
from tests.support.browser import live_stack

APP = str(Path(__file__).resolve().parents[2] / "dashboard/app.py")


def rows(path: Path, sql: str, *params: Any) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def pull_and_publish() -> None:
    services = build_services(load_settings())
    try:
        jobs.pull(services)
        jobs.publish(services, jobs.documents_due(services))
    finally:
        services.close()


def run(app: AppTest) -> AppTest:
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def button(app: AppTest, label: str):
    return next(b for b in app.button if b.label == label)


def select(app: AppTest, number: str) -> AppTest:
    shown = list(app.dataframe[0].value["Invoice"])
    app.session_state[app.dataframe[0].key] = {
        "selection": {"rows": [shown.index(number)], "columns": [], "cells": []}
    }
    return run(app)


@pytest.mark.timeout(600)
def test_fix_a_number_then_send_it_from_the_dashboard(stack):
    pull_and_publish()
    number, old_raw = rows(
        stack.ledger_path,
        "SELECT invoice_number, phone_raw FROM invoices WHERE phone_status = 'invalid' "
        "AND buyer_country = 'TH' ORDER BY 1 LIMIT 1",
    )[0]
    app = run(AppTest.from_file(APP, default_timeout=300))
    select(app, number)
    button(app, "Edit phone").click()
    run(app)
    next(t for t in app.text_input if t.label == "Telephone number").input("089-876-5432")
    run(app)
    button(app, "Update").click()
    run(app)

    assert any("updated: +66 ••• ••• 432" in s.value for s in app.success)
    who = rows(stack.ledger_path, "SELECT edited_by FROM phone_edits")[0][0]
    assert who.endswith("@localhost")
    assert rows(stack.ledger_path, "SELECT invoice_number, old_raw, new_raw FROM phone_edits") == [
        (number, old_raw, "089-876-5432")
    ]
    shown = app.dataframe[0].value.set_index("Invoice")
    assert shown.loc[number, "Phone"] == "+66 ••• ••• 432"
    assert "edit-phone" in {r[0] for r in rows(stack.ledger_path, "SELECT flow FROM runs")}

    select(app, number)
    button(app, "Send SMS").click()
    run(app)
    assert any("1 SMS sent" in s.value for s in app.success)
    sent = stack.accepted_messages()
    assert [m["to"] for m in sent] == ["+66898765432"]
    charged = rows(
        stack.ledger_path,
        "SELECT invoice_number, requested_by, purpose, amount FROM charges",
    )
    assert len(charged) == 1
    assert charged[0][0] == number and charged[0][1] == who and charged[0][3] > 0
    request_id = charged[0][2].removeprefix("manual:")
    assert {"edit-phone", "send-sms"} <= {
        r[0] for r in rows(stack.ledger_path, "SELECT flow FROM runs")
    }
    assert app.dataframe[0].value.set_index("Invoice").loc[number, "SMS"].startswith("✓ ")

    # A click that arrived while that send ran finds the same request id: nothing more goes.
    select(app, number)
    app.session_state["sms_request"] = {"id": request_id, "done": True}
    button(app, "Send SMS").click()
    run(app)
    assert any("already sent by this request" in i.value for i in app.info), [
        (type(n).__name__, n.value) for n in (*app.info, *app.success, *app.warning, *app.error)
    ]
    assert len(stack.accepted_messages()) == 1
    # The next deliberate press is a new request: a new, charged SMS.
    select(app, number)
    button(app, "Send SMS").click()
    run(app)
    assert len(stack.accepted_messages()) == 2


@pytest.mark.timeout(600)
def test_send_all_from_the_dashboard_charges_what_its_summary_said(stack):
    pull_and_publish()
    app = run(AppTest.from_file(APP, default_timeout=300))
    button(app, "Send All by SMS").click()
    run(app)
    metrics = {m.label: m.value for m in app.metric}
    recipients = int(metrics["Recipients"].replace(",", ""))
    total = Decimal(metrics["Total cost"].split()[0])
    ok = rows(stack.ledger_path, "SELECT count(*) FROM invoices WHERE phone_status = 'ok'")[0][0]
    assert recipients == ok > 0

    button(app, "Confirm and send").click()
    run(app)

    assert any("(equal)" in s.value for s in app.success), [s.value for s in app.success]
    assert len(stack.accepted_messages()) == recipients
    charged = rows(stack.ledger_path, "SELECT count(*), sum(amount) FROM charges")[0]
    assert charged == (recipients, total)
    runs = rows(stack.ledger_path, "SELECT flow, summary_json FROM runs WHERE flow = 'send-sms'")
    assert len(runs) == 1 and '"requested_by"' in runs[0][1]
    assert "Send All by SMS" not in {getattr(b, "label", "") for b in app.button if b.disabled}


@pytest.mark.timeout(600)
def test_send_then_resend_one_invoice_by_email_from_its_row(tmp_path, monkeypatch):
    with live_stack(tmp_path, monkeypatch, 20, email=True) as stack:
        pull_and_publish()
        number, address = rows(
            stack.ledger_path,
            "SELECT invoice_number, buyer_email FROM invoices WHERE email_status = 'ok' "
            "ORDER BY 1 LIMIT 1",
        )[0]
        app = run(AppTest.from_file(APP, default_timeout=300))
        assert "E-mail" in app.dataframe[0].value.columns
        select(app, number)
        button(app, "Send by e-mail").click()
        run(app)
        assert any("1 e-mail sent" in s.value for s in app.success), [
            (type(n).__name__, n.value) for n in (*app.success, *app.warning, *app.error)
        ]
        assert [m["rcpt_tos"][0] for m in stack.smtp.messages()] == [address]
        assert stack.accepted_messages() == []  # by e-mail only: no SMS
        assert app.dataframe[0].value.set_index("Invoice").loc[number, "E-mail"].startswith("✓ ")

        # Sent once, the row offers a resend: a new request, a second e-mail.
        select(app, number)
        button(app, "Resend by e-mail").click()
        run(app)
        assert [m["rcpt_tos"][0] for m in stack.smtp.messages()] == [address, address]
        sends = rows(
            stack.ledger_path,
            "SELECT count(DISTINCT purpose) FROM messages WHERE channel = 'email' "
            "AND status = 'accepted' AND invoice_number = ?",
            number,
        )
        assert sends == [(2,)]
