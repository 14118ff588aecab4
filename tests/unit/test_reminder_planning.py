"""Which reminder step falls due now: the latest due step, once, in the seller's days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pandas as pd

from courier.reminders.planning import next_steps, plan_steps, reminder_purpose, reminder_values
from courier.reminders.rules_file import parse_rules

RULES = parse_rules(
    """
version: 1
rules:
  - id: chase
    name: Chase
    anchor: due_date
    min_amount_due: {THB: 100}
    steps:
      - {when: 3 days before, template: "{number} due {due_date} {link}"}
      - {when: 7 days after, template: "{number} {days_overdue} days {link}"}
      - {when: 14 days after, template: "{number} {days_overdue} days {link}"}
      - {when: 1 month after, template: "{number} month {link}"}
"""
)


def facts(**overrides: object) -> pd.DataFrame:
    row = {
        "invoice_number": "INV-1",
        "type_code": "388",
        "seller_country": "TH",
        "seller_timezone": "",
        "issued_at": datetime(2026, 11, 20, 3, tzinfo=UTC),
        "due_date": date(2026, 12, 20),
        "created_at": datetime(2026, 11, 20, 3, tzinfo=UTC),
        "paid_at": None,
        "currency": "THB",
        "payment_status": "unpaid",
        "amount_due": Decimal("1070.00"),
        "paused": False,
        "pause_reason": None,
    }
    row.update(overrides)
    return pd.DataFrame([row])


def bangkok(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) - timedelta(hours=7)


def due_steps(frame: pd.DataFrame, now: datetime, sent: dict | None = None) -> list[str]:
    return [d.step_id for d in plan_steps(frame, sent or {}, RULES, now).due]


def test_before_on_and_after_due_at_the_sellers_send_time():
    frame = facts()
    assert due_steps(frame, bangkok(date(2026, 12, 17), 8, 59)) == []
    assert due_steps(frame, bangkok(date(2026, 12, 17), 9, 0)) == ["3-days-before"]
    assert due_steps(frame, bangkok(date(2026, 12, 27), 9, 0)) == ["7-days-after"]
    assert due_steps(frame, bangkok(date(2027, 1, 20), 9, 0)) == ["1-month-after"]


def test_after_a_gap_only_the_latest_due_step_goes_and_earlier_ones_never_follow():
    frame = facts()
    # Nothing ran from Dec 16 to Jan 4: the 3-before and 7-after steps were missed.
    now = bangkok(date(2027, 1, 4), 10)
    assert due_steps(frame, now) == ["14-days-after"]
    sent = {"INV-1": {reminder_purpose("chase", "14-days-after")}}
    assert due_steps(frame, now, sent) == []
    assert due_steps(frame, now + timedelta(days=1), sent) == []  # 7-after stays superseded


def test_a_step_found_later_than_its_grace_is_skipped_with_the_reason():
    plan = plan_steps(facts(), {}, RULES, bangkok(date(2027, 1, 1), 9))  # 12 days after
    assert plan.due == []
    assert [(s.step_id, s.reason_code) for s in plan.skips] == [("7-days-after", "grace_passed")]
    assert "not sent late" in plan.skips[0].reason


def test_paid_paused_and_below_minimum_are_skipped_and_say_why():
    now = bangkok(date(2026, 12, 27), 9)
    cases = {
        "paid": facts(payment_status="paid", amount_due=Decimal("0")),
        "paused": facts(paused=True, pause_reason="Payment plan"),
        "below_minimum": facts(payment_status="partial", amount_due=Decimal("99.99")),
    }
    for code, frame in cases.items():
        plan = plan_steps(frame, {}, RULES, now)
        assert plan.due == [] and [s.reason_code for s in plan.skips] == [code]
    assert "Payment plan" in plan_steps(cases["paused"], {}, RULES, now).skips[0].reason
    partial = facts(payment_status="partial", amount_due=Decimal("100.00"))
    assert due_steps(partial, now) == ["7-days-after"]  # at the minimum: still chased


def test_a_credit_note_is_not_chased():
    assert due_steps(facts(type_code="81"), bangkok(date(2026, 12, 27), 9)) == []


def test_month_steps_keep_the_day_or_take_the_months_last_day():
    jan31 = facts(due_date=date(2027, 1, 31))
    assert due_steps(jan31, bangkok(date(2027, 2, 28), 8)) == []  # 14-after: window passed
    assert due_steps(jan31, bangkok(date(2027, 2, 28), 9)) == ["1-month-after"]
    leap = facts(due_date=date(2028, 1, 31))
    assert due_steps(leap, bangkok(date(2028, 2, 29), 9)) == ["1-month-after"]


def test_the_sellers_local_day_decides_in_dst_and_dst_free_zones():
    # 7 days after a 2026-07-07 due date = 2026-07-14, 09:00 local.
    cases = {
        ("EG", "July"): (date(2026, 7, 7), datetime(2026, 7, 14, 6, tzinfo=UTC)),  # EEST +3
        ("EG", "January"): (date(2027, 1, 7), datetime(2027, 1, 14, 7, tzinfo=UTC)),  # EET +2
        ("SA", "July"): (date(2026, 7, 7), datetime(2026, 7, 14, 6, tzinfo=UTC)),
        ("TH", "July"): (date(2026, 7, 7), datetime(2026, 7, 14, 2, tzinfo=UTC)),
    }
    for (country, _), (due, fires) in cases.items():
        frame = facts(seller_country=country, due_date=due)
        assert due_steps(frame, fires - timedelta(minutes=1)) == [], country
        plan = plan_steps(frame, {}, RULES, fires)
        assert [d.step_id for d in plan.due] == ["7-days-after"], country
        assert plan.due[0].due_at == fires
    # Late on July 14 in UTC is already July 15 in Cairo: 8 days overdue, as the buyer reads it.
    values = reminder_values(
        date(2026, 7, 7), Decimal("10"), Decimal("0"), datetime(2026, 7, 14, 22, 30, tzinfo=UTC),
        "Africa/Cairo",
    )  # fmt: skip
    assert values["days_overdue"] == "8" and values["days_until_due"] == "0"


def test_the_next_step_is_the_earliest_still_to_come_and_none_once_the_chase_ends():
    frame = facts()
    upcoming = next_steps(frame, {}, RULES, bangkok(date(2026, 12, 1), 9))
    assert upcoming["INV-1"].step_id == "3-days-before"
    assert upcoming["INV-1"].due_at == bangkok(date(2026, 12, 17), 9)
    # Once the 7-day step went, the next is the 14-day one, even before it is reached.
    sent = {"INV-1": {reminder_purpose("chase", "7-days-after")}}
    later = next_steps(frame, sent, RULES, bangkok(date(2026, 12, 27), 10))
    assert later["INV-1"].step_id == "14-days-after"
    # The last step sent, paid, or paused: nothing next.
    done = {"INV-1": {reminder_purpose("chase", "1-month-after")}}
    assert next_steps(frame, done, RULES, bangkok(date(2026, 12, 1), 9)) == {}
    assert next_steps(facts(payment_status="paid"), {}, RULES, bangkok(date(2026, 12, 1), 9)) == {}
    assert next_steps(facts(paused=True), {}, RULES, bangkok(date(2026, 12, 1), 9)) == {}
