"""The reminders flow, under Prefect, against the sandboxes (ERP with payments, SMS gateway,
document store): the issue's "done when", one behaviour per test.

Each test crafts a few invoices (due dates, payments, seller countries), runs the nightly
send once (documents stored, on-issue SMS), then the reminders flow at chosen moments
(``as_of``), with the ERP's clock set to the same moment so payments appear as they would.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import httpx
import pytest

from courier.domain import Invoice
from courier.messages import format_amount
from courier.phones import clean_phone
from courier.sample_data import generate_invoices
from flows.nightly import nightly_send
from flows.reminders import reminders
from tests.support.browser import LiveStack, live_stack

BANGKOK = ZoneInfo("Asia/Bangkok")


def rows(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def textable(count: int = 200) -> dict[str, list[Invoice]]:
    """Generated unpaid tax invoices with a mobile number, by seller country."""
    found: dict[str, list[Invoice]] = {}
    for invoice in generate_invoices(count=count):
        country = invoice.seller.address.country
        phone = clean_phone(invoice.buyer_phone_raw, invoice.buyer.address.country)
        if (
            phone.status == "ok"
            and invoice.type_code == "388"
            and country == (invoice.buyer.address.country)
        ):
            found.setdefault(country, []).append(invoice)
    return found


def due_on(invoice: Invoice, due: date, **changes: object) -> Invoice:
    """``invoice`` issued 20 days before ``due``, unpaid unless ``changes`` say otherwise."""
    zone = invoice.issued_at.tzinfo
    issued = datetime.combine(due - timedelta(days=20), datetime.min.time(), zone).replace(hour=10)
    base: dict[str, object] = {
        "issued_at": issued,
        "due_date": due,
        "payment_status": "unpaid",
        "amount_paid": Decimal("0.00"),
        "paid_at": None,
        "created_at": None,
        "updated_at": None,
    }
    return dataclasses.replace(invoice, **{**base, **changes})


def set_erp_clock(stack: LiveStack, moment: datetime) -> None:
    httpx.post(
        f"{stack.erp_url}/_sandbox/config", json={"clock": moment.isoformat()}
    ).raise_for_status()


def pay(stack: LiveStack, number: str, amount: Decimal, at: datetime, status: str = "paid") -> None:
    event = {
        "number": number,
        "paid_at": at.isoformat(),
        "amount_paid": str(amount),
        "payment_status": status,
    }
    httpx.post(f"{stack.erp_url}/_sandbox/payments", json=event).raise_for_status()


def run_reminders(stack: LiveStack, as_of: datetime) -> dict:
    set_erp_clock(stack, as_of)
    return reminders(as_of=as_of)


def reminder_messages(stack: LiveStack) -> list[tuple[str, str, str, str]]:
    """(invoice, purpose, status, body) of every reminder in the outbox."""
    return rows(
        stack.ledger_path,
        "SELECT invoice_number, purpose, status, body FROM messages "
        "WHERE purpose LIKE 'reminder:%' ORDER BY invoice_number, purpose",
    )


def gateway_reminders(stack: LiveStack) -> Counter[str]:
    """What the SMS gateway really accepted, per (number, body) — a reminder body
    differs from the on-issue one, so a repeat would count 2."""
    return Counter(m["body"] for m in stack.accepted_messages())


@pytest.fixture
def shipped_rules_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple]:
    """Eight invoices due 2026-12-10, behind the sandboxes, with the shipped rules:

    a, b: Thai, unpaid; c: Thai, partly paid; d: Saudi, paid before the courtesy step;
    e: Thai, its buyer paused; f: Egyptian, unpaid; g: Thai, 0.50 left to pay (below the
    overdue rule's minimum of 1); h: Saudi, unpaid.
    """
    pool = textable()
    th, sa, eg = pool["TH"], pool["SA"], pool["EG"]
    due = date(2026, 12, 10)
    c_paid = (th[2].grand_total / 2).quantize(Decimal("0.01"))
    invoices = {
        "a": due_on(th[0], due),
        "b": due_on(th[1], due),
        "c": due_on(th[2], due, payment_status="partial", amount_paid=c_paid),
        "d": due_on(sa[0], due),
        "e": due_on(th[3], due),
        "f": due_on(eg[0], due),
        "g": due_on(
            th[4], due, payment_status="partial", amount_paid=th[4].grand_total - Decimal("0.50")
        ),
        "h": due_on(sa[1], due),
    }
    with live_stack(tmp_path, monkeypatch, 0, invoices=list(invoices.values())) as stack:
        monkeypatch.setenv(
            "COURIER_REMINDER_RULES_PATH",
            str(Path(__file__).resolve().parents[2] / "data/reminder_rules.yaml"),
        )
        on_issue = nightly_send()
        assert on_issue["run_sms_sent"] == len(invoices)
        yield stack, {k: v.number for k, v in invoices.items()}, invoices


@pytest.mark.timeout(600)
def test_reminders_follow_the_rules_once_each_and_stop_when_paid_or_paused(
    shipped_rules_stack, monkeypatch
):
    stack, n, invoices = shipped_rules_stack
    from courier.ledger import Ledger

    Ledger(stack.ledger_path).pause_reminders("buyer", n["e"], "Disputed delivery", "ops@seller")
    pay(
        stack,
        n["d"],
        invoices["d"].grand_total,
        datetime(2026, 12, 5, 12, tzinfo=ZoneInfo("Asia/Riyadh")),
    )

    # 2026-12-07 is three days before due: the courtesy step, at 09:00 in each seller's
    # zone. At 10:00 Bangkok (03:00 UTC) it is 06:00 in Riyadh and 05:00 in Cairo.
    first = run_reminders(stack, datetime(2026, 12, 7, 10, tzinfo=BANGKOK))
    sent = {(r[0], r[1]) for r in reminder_messages(stack)}
    courtesy = "reminder:courtesy-before-due:3-days-before"
    assert sent == {(n[k], courtesy) for k in ("a", "b", "c", "g")}
    assert first["reminders_sent"] == 4
    assert first["reminders_skipped"] == {"paused": 1}  # e; d's payment not due yet here

    # The same day twice more: only what fell due since (Riyadh and Cairo at 09:00 there).
    second = run_reminders(stack, datetime(2026, 12, 7, 12, tzinfo=BANGKOK))  # Riyadh 08:00
    assert second["reminders_sent"] == 0
    third = run_reminders(stack, datetime(2026, 12, 7, 16, tzinfo=BANGKOK))  # 09:00 UTC
    assert third["reminders_sent"] == 2  # f (Cairo 11:00) and h (Riyadh 12:00)
    assert third["reminders_skipped_paid"] == 1  # d paid on 12-05
    sent = Counter((r[0], r[1]) for r in reminder_messages(stack))
    assert set(sent) == {(n[k], courtesy) for k in ("a", "b", "c", "f", "g", "h")}
    assert set(sent.values()) == {1}
    assert max(gateway_reminders(stack).values()) == 1  # the gateway got each text once

    # Partial payment: the text says what is still owed, not the invoice total.
    bodies = {r[0]: r[3] for r in reminder_messages(stack)}
    owed = invoices["c"].grand_total - invoices["c"].amount_paid
    assert format_amount(owed) in bodies[n["c"]]
    assert format_amount(invoices["c"].grand_total) not in bodies[n["c"]]

    # 7 days overdue; b pays between the plan and the send (a pull records it): not sent.
    import flows.reminders as flow_module
    from courier import jobs
    from courier.settings import load_settings
    from courier.wiring import build_services

    real_batch = flow_module.send_reminder_batch
    overdue_at = datetime(2026, 12, 17, 10, tzinfo=BANGKOK)

    def pay_b_then_send(keys, run_id, as_of):
        pay(stack, n["b"], invoices["b"].grand_total, overdue_at - timedelta(minutes=5))
        services = build_services(load_settings())
        try:
            assert jobs.pull(services)["paid_since_last_pull"] == 1
        finally:
            services.close()
        return real_batch(keys, run_id, as_of)

    monkeypatch.setattr(flow_module, "send_reminder_batch", pay_b_then_send)
    overdue = run_reminders(stack, overdue_at)
    monkeypatch.setattr(flow_module, "send_reminder_batch", real_batch)
    seven = "reminder:overdue-chase:7-days-after"
    sent_now = {r[0] for r in reminder_messages(stack) if r[1] == seven}
    # a, c only: b paid meanwhile; d paid; e paused; g owes 0.50 (below the minimum 1);
    # f and h are not at 09:00 yet in Cairo / Riyadh at 10:00 Bangkok.
    assert sent_now == {n["a"], n["c"]}
    assert overdue["reminders_skipped_paid"] == 1  # b, at the send
    assert overdue["reminder_outcomes"]["skipped_paid_at_send"] == 1
    assert overdue["reminders_skipped"].get("below_minimum") == 1
    skips = dict(
        rows(
            stack.ledger_path,
            "SELECT invoice_number, reason_code FROM reminder_skips WHERE step_id = ?",
            ["7-days-after"],
        )
    )
    assert skips[n["b"]] == "paid" and skips[n["g"]] == "below_minimum"
    assert skips[n["e"]] == "paused"
    # The charges of the run are the run's accepted reminders at their quoted prices.
    charged = rows(
        stack.ledger_path,
        "SELECT coalesce(sum(c.amount), 0) FROM charges c JOIN messages m "
        "ON m.provider_sid = c.provider_sid WHERE m.purpose = ?",
        [seven],
    )[0][0]
    assert overdue["run_charges"] == charged > 0


@pytest.mark.timeout(600)
def test_after_a_ten_day_gap_only_the_latest_due_step_goes_out(shipped_rules_stack):
    stack, _, _ = shipped_rules_stack
    run_reminders(stack, datetime(2026, 12, 7, 16, tzinfo=BANGKOK))  # the courtesy step
    # Nothing ran from 12-07 to 12-25: the 7-day step (12-17) was missed; the 14-day one
    # (12-24 09:00) is due and within grace. Only that one goes, the 7-day one never.
    summary = run_reminders(stack, datetime(2026, 12, 25, 16, tzinfo=BANGKOK))
    chase = [r for r in reminder_messages(stack) if r[1].startswith("reminder:overdue-chase")]
    assert {r[1] for r in chase} == {"reminder:overdue-chase:14-days-after"}
    assert summary["reminders_sent"] == len(chase) > 0
    again = run_reminders(stack, datetime(2026, 12, 26, 16, tzinfo=BANGKOK))
    assert again["reminders_sent"] == 0  # the 7-day step does not follow late
    # Long after: the 21-day step's window has passed too (grace 3 days): recorded, not sent.
    late = run_reminders(stack, datetime(2027, 1, 20, 16, tzinfo=BANGKOK))
    assert late["reminders_sent"] == 0
    assert late["reminders_skipped"]["grace_passed"] >= len(chase)


@pytest.mark.timeout(600)
def test_two_reminder_runs_at_once_send_each_step_once(shipped_rules_stack, tmp_path):
    from prefect.settings import PREFECT_API_URL

    stack, n, _ = shipped_rules_stack
    from courier.ledger import Ledger

    Ledger(stack.ledger_path).pause_reminders("invoice", n["e"], "Disputed", "ops@seller")
    stack.sms.configure(latency_ms=150)  # both runs busy sending at the same time
    as_of = datetime(2026, 12, 7, 16, tzinfo=BANGKOK)
    set_erp_clock(stack, as_of)
    env = {
        **__import__("os").environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    command = [
        sys.executable,
        "-m",
        "courier",
        "reminders",
        "run",
        "--json",
        "--as-of",
        as_of.isoformat(),
    ]
    runs = [
        subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [json.loads(p.communicate(timeout=300)[0].strip().splitlines()[-1]) for p in runs]
    assert all(p.returncode == 0 for p in runs)
    sent = sum(o["reminders_sent"] for o in outputs)
    in_outbox = reminder_messages(stack)
    assert sent == len(in_outbox) == 7  # every courtesy step but e's (its buyer paused)
    assert max(gateway_reminders(stack).values()) == 1
