"""Reminder timing on the real flow: hour, day and month offsets before / on / after
their moment (month ends, Feb 29), the seller's local day in DST-free and DST zones, and
a rules file with a typo refused before anything runs.

"Not yet" is checked with the preview (what the next run would send, nothing written);
"now" by running the flow at that moment and reading the outbox and the gateway.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from courier import jobs
from courier.reminders.rules_file import RuleFileError
from courier.settings import load_settings
from courier.wiring import build_services
from flows.nightly import nightly_send
from flows.reminders import reminders
from tests.e2e.test_reminders_flow import (
    BANGKOK,
    due_on,
    gateway_reminders,
    reminder_messages,
    run_reminders,
    textable,
)
from tests.support.browser import live_stack

REPO = Path(__file__).resolve().parents[2]

TIMING_RULES = """
version: 1
rules:
  - id: after-issue
    name: Two hours after issue
    anchor: issue_date
    steps:
      - when: 2 hours after
        channel: sms
        template: "{seller}: invoice {number} was issued. {link}"
  - id: on-due
    name: On the due date
    anchor: due_date
    steps:
      - when: instantly
        channel: sms
        template: "{seller}: invoice {number} is due today, {amount_due} {currency}. {link}"
  - id: month-after
    name: A month after due
    anchor: due_date
    grace: 2 days
    steps:
      - when: 1 month after
        channel: sms
        template: "{seller}: {number} is {days_overdue} days overdue. {link}"
"""


def would_send(moment: datetime) -> set[tuple[str, str]]:
    """(invoice, rule:step) the next run would send at ``moment`` (the preview)."""
    services = build_services(load_settings())
    try:
        preview = jobs.preview_reminders(
            services.ledger, services.reminder_rules(), services.prices, services.settings, moment
        )
    finally:
        services.close()
    return {(row["invoice_number"], row["step"]) for row in preview["sms"]}


def sent_steps(stack) -> set[tuple[str, str]]:
    return {(r[0], r[1].removeprefix("reminder:")) for r in reminder_messages(stack)}


@pytest.fixture
def timing_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple]:
    """Two Thai invoices: one due 2027-01-31 (a month later is Feb 28), one due
    2028-01-31 and issued 2028-01-11 10:00 Bangkok (a month later is Feb 29)."""
    th = textable()["TH"]
    short = due_on(th[0], date(2027, 1, 31))
    leap = due_on(th[1], date(2028, 1, 31))
    with live_stack(tmp_path, monkeypatch, 0, invoices=[short, leap]) as stack:
        rules = tmp_path / "rules.yaml"
        rules.write_text(TIMING_RULES, encoding="utf-8")
        monkeypatch.setenv("COURIER_REMINDER_RULES_PATH", str(rules))
        assert nightly_send()["run_sms_sent"] == 2
        yield stack, short.number, leap.number, leap.issued_at


@pytest.mark.timeout(600)
def test_hour_day_and_month_steps_fall_due_at_their_moment_not_before(timing_stack):
    stack, short, leap, issued = timing_stack
    assert issued == datetime(2028, 1, 11, 10, tzinfo=BANGKOK)

    # A month after Jan 31, 2027 is Feb 28 (09:00 Bangkok): not the day before, on the day.
    assert (short, "month-after:1-month-after") not in would_send(
        datetime(2027, 2, 27, 9, 30, tzinfo=BANGKOK)
    )
    run_reminders(stack, datetime(2027, 2, 28, 9, 30, tzinfo=BANGKOK))
    assert (short, "month-after:1-month-after") in sent_steps(stack)

    # Two hours after the issue moment: 12:00 Bangkok, to the minute.
    assert (leap, "after-issue:2-hours-after") not in would_send(
        datetime(2028, 1, 11, 11, 59, tzinfo=BANGKOK)
    )
    run_reminders(stack, datetime(2028, 1, 11, 12, 1, tzinfo=BANGKOK))
    assert (leap, "after-issue:2-hours-after") in sent_steps(stack)

    # "Instantly" on a due date: 09:00 of that local day.
    assert (leap, "on-due:instantly") not in would_send(
        datetime(2028, 1, 31, 8, 59, tzinfo=BANGKOK)
    )
    run_reminders(stack, datetime(2028, 1, 31, 9, 1, tzinfo=BANGKOK))
    assert (leap, "on-due:instantly") in sent_steps(stack)

    # A month after Jan 31, 2028 is Feb 29 (a leap year), 29 days overdue.
    assert (leap, "month-after:1-month-after") not in would_send(
        datetime(2028, 2, 28, 9, 30, tzinfo=BANGKOK)
    )
    run_reminders(stack, datetime(2028, 2, 29, 9, 30, tzinfo=BANGKOK))
    bodies = {(r[0], r[1]): r[3] for r in reminder_messages(stack)}
    assert "is 29 days overdue" in bodies[(leap, "reminder:month-after:1-month-after")]
    assert "is 28 days overdue" in bodies[(short, "reminder:month-after:1-month-after")]
    assert max(gateway_reminders(stack).values()) == 1
    # The short invoice's 2027 steps that were never run in time are skipped, not sent.
    assert (short, "after-issue:2-hours-after") not in sent_steps(stack)


@pytest.mark.timeout(300)
def test_a_rules_file_with_a_typo_stops_the_flow_naming_rule_and_field(
    timing_stack, tmp_path, monkeypatch
):
    stack, *_ = timing_stack
    broken = tmp_path / "broken.yaml"
    broken.write_text(TIMING_RULES.replace("grace: 2 days", "grase: 2 days"), encoding="utf-8")
    monkeypatch.setenv("COURIER_REMINDER_RULES_PATH", str(broken))
    with pytest.raises(RuleFileError) as refused:
        reminders(as_of=datetime(2028, 2, 29, 9, 30, tzinfo=BANGKOK))
    assert "rule 'month-after': field 'grase'" in str(refused.value)
    assert "did you mean 'grace'" in str(refused.value)
    assert reminder_messages(stack) == []  # nothing ran


@pytest.fixture
def zones_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple]:
    """Sellers in Bangkok (UTC+7), Riyadh (UTC+3) and Cairo (UTC+2, UTC+3 in summer),
    invoices due 2026-07-10 (Cairo on summer time) and 2026-12-10 (Cairo on winter time)."""
    pool = textable()
    july, december = date(2026, 7, 10), date(2026, 12, 10)
    invoices = {
        "th-jul": due_on(pool["TH"][0], july),
        "sa-jul": due_on(pool["SA"][0], july),
        "eg-jul": due_on(pool["EG"][0], july),
        "eg-dec": due_on(pool["EG"][1], december),
        "sa-dec": due_on(pool["SA"][1], december),
    }
    with live_stack(tmp_path, monkeypatch, 0, invoices=list(invoices.values())) as stack:
        monkeypatch.setenv("COURIER_REMINDER_RULES_PATH", str(REPO / "data/reminder_rules.yaml"))
        assert nightly_send()["run_sms_sent"] == len(invoices)
        yield stack, {k: v.number for k, v in invoices.items()}


@pytest.mark.timeout(600)
def test_each_seller_gets_its_local_day_in_dst_free_and_dst_zones(zones_stack):
    stack, n = zones_stack
    seven = "overdue-chase:7-days-after"
    # 2026-07-17 06:30 UTC: 13:30 Bangkok, 09:30 Riyadh, 09:30 Cairo (summer, UTC+3): the
    # 7-days-overdue step is due for all three. (Cairo at UTC+2 would be 08:30: not yet.)
    run_reminders(stack, datetime(2026, 7, 17, 6, 30, tzinfo=UTC))
    sent = sent_steps(stack)
    assert {(n[k], seven) for k in ("th-jul", "sa-jul", "eg-jul")} <= sent
    bodies = {r[0]: r[3] for r in reminder_messages(stack)}
    assert "is 7 days overdue" in bodies[n["eg-jul"]]
    # 2026-12-17 06:30 UTC in winter: 09:30 Riyadh, but 08:30 Cairo (UTC+2): not yet ...
    upcoming = would_send(datetime(2026, 12, 17, 6, 30, tzinfo=UTC))
    assert (n["sa-dec"], seven) in upcoming
    assert (n["eg-dec"], seven) not in upcoming
    # ... and at 07:05 UTC (09:05 Cairo) it is.
    run_reminders(stack, datetime(2026, 12, 17, 7, 5, tzinfo=UTC))
    assert {(n["sa-dec"], seven), (n["eg-dec"], seven)} <= sent_steps(stack)
    assert max(gateway_reminders(stack).values()) == 1
