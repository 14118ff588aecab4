"""Which reminder step of which invoice falls due now (pure: values and DataFrames in).

For each active rule and each invoice of its document types, the step that counts is the
*latest* one due by now: after missed days an invoice gets that one step, never a backlog
of every missed one, and once a step is in the outbox (sent, tried, or claimed by a person's
"send now") no earlier or equal step of that rule is sent for the invoice again. That step
then goes out unless:

* it is later than the rule's ``grace`` (the window passed: skipped, recorded, not sent late),
* the invoice is paid and the rule stops when paid,
* the invoice's payment status is not one the rule chases (not a match: nothing to say),
* less than the rule's ``min_amount_due`` is owed,
* reminders are paused for the invoice or its buyer.

What remains goes through the same guard rails as every SMS (textable number, documents
stored, opt-outs, sending hours, budget) when its intent is built and claimed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Set
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from courier.messages import format_amount
from courier.reminders.rules import Rule, RuleSet
from courier.reminders.schedule import days_between_local, seller_timezone, step_due_at

#: Why a step that fell due was not sent (recorded in ``reminder_skips``).
SKIP_REASONS: Mapping[str, str] = {
    "grace_passed": "Window passed ({late} late; grace {grace}): not sent late",
    "paid": "Invoice paid: reminders stopped",
    "below_minimum": "Amount due {due} is below the rule's minimum {minimum}",
    "paused": "Reminders paused: {why}",
}


def reminder_purpose(rule_id: str, step_id: str) -> str:
    """The outbox purpose (and so the idempotency key) of one step of one rule."""
    return f"reminder:{rule_id}:{step_id}"


@dataclass(frozen=True)
class DueStep:
    invoice_number: str
    rule_id: str
    step_id: str
    due_at: datetime
    zone: str  # the seller's, in which the days count

    @property
    def purpose(self) -> str:
        return reminder_purpose(self.rule_id, self.step_id)


@dataclass(frozen=True)
class Skip:
    invoice_number: str
    rule_id: str
    step_id: str
    reason_code: str  # a key of SKIP_REASONS
    reason: str
    due_at: datetime


@dataclass
class StepPlan:
    due: list[DueStep] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)


def _anchor(row: Any, rule: Rule) -> datetime | date | None:
    if rule.anchor == "due_date":
        value = row.due_date
        return value.date() if isinstance(value, datetime) else value
    value = {"issue_date": row.issued_at, "created_date": row.created_at,
             "paid_date": row.paid_at}[rule.anchor]  # fmt: skip
    if value is None or value is pd.NaT:
        return None
    return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value


def _anchored(rows: pd.DataFrame, rule: Rule) -> Iterator[tuple[Any, datetime | date, str]]:
    """Each row with the anchor the rule counts from and the seller's zone (rows without
    that anchor, e.g. an unpaid invoice for a paid-date rule, are left out)."""
    for row in rows.itertuples(index=False):
        anchor = _anchor(row, rule)
        if anchor is not None:
            zone = seller_timezone(str(row.seller_country), str(row.seller_timezone or ""))
            yield row, anchor, zone


def _duration(delta: Any) -> str:
    hours = int(delta.total_seconds() // 3600)
    return f"{hours // 24} days" if hours >= 48 else f"{hours} hours"


def plan_steps(
    facts: pd.DataFrame,
    in_outbox: Mapping[str, Set[str]],
    rules: RuleSet,
    now: datetime,
) -> StepPlan:
    """The steps due now and the ones skipped (with why).

    ``facts`` has the columns of the ledger's ``invoice_reminders`` view; ``in_outbox``
    maps an invoice number to the purposes already in its outbox rows.
    """
    plan = StepPlan()
    if facts.empty:
        return plan
    for rule in rules.active:
        rows = facts[facts["type_code"].isin(list(rule.document_types))]
        purposes = [reminder_purpose(rule.id, step.id) for step in rule.steps]
        for row, anchor, zone in _anchored(rows, rule):
            due = [step_due_at(s.offset, anchor, zone, rule.send_time) for s in rule.steps]
            reached = [i for i, moment in enumerate(due) if moment <= now]
            if not reached:
                continue
            latest = reached[-1]
            had = in_outbox.get(str(row.invoice_number), frozenset())
            if any(p in had for p in purposes[latest:]):
                continue  # this step, or a later one, already went (or was claimed)
            step, due_at = rule.steps[latest], due[latest]
            number = str(row.invoice_number)
            skip = _why_not(row, rule, now - due_at)
            if skip is None:
                plan.due.append(DueStep(number, rule.id, step.id, due_at, zone))
            elif skip[0] != "no_match":
                plan.skips.append(Skip(number, rule.id, step.id, skip[0], skip[1], due_at))
    return plan


def _why_not(row: Any, rule: Rule, late: Any) -> tuple[str, str] | None:
    status = str(row.payment_status)
    if late > rule.grace:
        text = SKIP_REASONS["grace_passed"].format(
            late=_duration(late), grace=_duration(rule.grace)
        )
        return "grace_passed", text
    if rule.stop_when_paid and status == "paid":
        return "paid", SKIP_REASONS["paid"]
    if status not in rule.payment_statuses:
        return "no_match", ""
    owed = Decimal(str(row.amount_due))
    minimum = rule.minimum_for(str(row.currency))
    if owed < minimum:
        text = SKIP_REASONS["below_minimum"].format(
            due=f"{owed} {row.currency}", minimum=f"{minimum} {row.currency}"
        )
        return "below_minimum", text
    if bool(row.paused):
        return "paused", SKIP_REASONS["paused"].format(why=row.pause_reason or "")
    return None


def reminder_values(
    due_date: date, amount_due: Decimal, amount_paid: Decimal, now: datetime, zone: str
) -> dict[str, str]:
    """The placeholders a reminder adds to the on-issue ones, counted in local days."""
    days = days_between_local(due_date, now, zone)
    return {
        "amount_due": format_amount(amount_due),
        "amount_paid": format_amount(amount_paid),
        "days_overdue": str(max(days, 0)),
        "days_until_due": str(max(-days, 0)),
    }


def purposes_in_outbox(messages: pd.DataFrame) -> dict[str, set[str]]:
    """Invoice number -> the purposes of its outbox rows (``Ledger.message_keys()``), for
    ``plan_steps``. A row left to ``retry`` does not count: the step is planned again and
    its claim re-opens that same row."""
    kept = messages[messages["status"] != "retry"]
    result: dict[str, set[str]] = {}
    for number, purpose in zip(kept["invoice_number"], kept["purpose"], strict=True):
        result.setdefault(str(number), set()).add(str(purpose))
    return result


@dataclass(frozen=True)
class NextStep:
    invoice_number: str
    rule_id: str
    step_id: str
    due_at: datetime


def next_steps(
    facts: pd.DataFrame,
    in_outbox: Mapping[str, Set[str]],
    rules: RuleSet,
    now: datetime,
) -> dict[str, NextStep]:
    """Invoice number -> the next reminder step that will fall due after ``now`` (the
    earliest over the active rules), for invoices a rule still chases: of its types and
    payment statuses, not paid where the rule stops when paid, not paused. A step already
    in the outbox (or a later one of its rule) ends that rule's chase. The minimum amount
    is not judged here: it is decided when the step falls due."""
    upcoming: dict[str, NextStep] = {}
    if facts.empty:
        return upcoming
    for rule in rules.active:
        rows = facts[
            facts["type_code"].isin(list(rule.document_types))
            & facts["payment_status"].isin(list(rule.payment_statuses))
            & ~facts["paused"].fillna(False).astype(bool)
        ]
        if rule.stop_when_paid:
            rows = rows[rows["payment_status"] != "paid"]
        purposes = [reminder_purpose(rule.id, step.id) for step in rule.steps]
        for row, anchor, zone in _anchored(rows, rule):
            number = str(row.invoice_number)
            had = in_outbox.get(number, frozenset())
            for index, step in enumerate(rule.steps):
                if any(p in had for p in purposes[index:]):
                    continue
                due_at = step_due_at(step.offset, anchor, zone, rule.send_time)
                if due_at > now:
                    known = upcoming.get(number)
                    if known is None or due_at < known.due_at:
                        upcoming[number] = NextStep(number, rule.id, step.id, due_at)
                    break
    return upcoming
