"""From due reminder steps to outbox intents (pure): the same intents, guard rails and
prices as the on-issue SMS, with the step's template and the reminder's own values.

A due step becomes an ``Intent`` whose key is ``<invoice>:reminder:<rule>:<step>``, so a
step goes out once however often (or however many at once) the flow runs. It carries
``stop_when_paid`` (the rule's) and ``pausable``: the outbox checks both again in the
claim, right before sending. The rest is ``courier.planning.guard_rails``, shared with
every SMS: a textable number, both documents stored, no STOP, the buyer's sending hours.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

import pandas as pd

from courier.messages import PriceTable, language_for_country
from courier.planning import (
    Intent,
    SendingHours,
    build_intent,
    guard_rails,
    idempotency_key,
)
from courier.reminders.planning import DueStep, reminder_values
from courier.reminders.rules import RuleSet

#: Channels this build can send a reminder by; a step on any other channel waits (held,
#: not skipped), so it goes out once its channel exists and the step is still in grace.
AVAILABLE_CHANNELS = frozenset({"sms"})
REASON_CHANNEL_UNAVAILABLE = "Waiting for the {channel} channel (not available yet)"
REASON_NO_NUMBER = "No textable number"
REASON_NO_DOCUMENTS = "Documents not stored yet"


@dataclass
class ReminderIntents:
    intents: list[Intent] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)  # intent key -> reason


def reminder_intents(
    due: Sequence[DueStep],
    facts: pd.DataFrame,
    candidates: pd.DataFrame,
    rules: RuleSet,
    prices: PriceTable,
    *,
    now: datetime,
    opted_out: set[str] | frozenset[str] = frozenset(),
    hours: SendingHours | None = None,
    language: str = "auto",
    run_id: str | None = None,
    requested_by: str = "reminders",
) -> ReminderIntents:
    """One SMS intent per due step that passes the guard rails; the others ``held`` with
    the reason a person reads.

    ``facts`` is ``Ledger.reminder_facts()`` (amounts as exact text), ``candidates``
    ``Ledger.send_candidates()``. ``language`` is the SMS language setting: ``auto``
    picks by the buyer's country; a step without that language uses its English text.
    """
    result = ReminderIntents()
    if not due:
        return result
    numbers = sorted({step.invoice_number for step in due})
    mine = candidates[candidates["invoice_number"].isin(numbers)]
    textable_numbers = set(mine.loc[mine["phone_status"] == "ok", "invoice_number"])
    checked = guard_rails(mine, opted_out, now, hours)
    ready = {str(row.invoice_number): row for row in checked.due.itertuples(index=False)}
    facts_by_number = {
        str(row.invoice_number): row
        for row in facts[facts["invoice_number"].isin(numbers)].itertuples(index=False)
    }
    for step in due:
        key = idempotency_key(step.invoice_number, step.purpose)
        rule = rules.rule(step.rule_id)
        rule_step = rule.step(step.step_id)
        if not any(c in AVAILABLE_CHANNELS for c in rule_step.channels):
            missing = "/".join(rule_step.channels)
            result.held[key] = REASON_CHANNEL_UNAVAILABLE.format(channel=missing)
            continue
        if step.invoice_number in checked.held:
            result.held[key] = checked.held[step.invoice_number]
            continue
        row, fact = ready.get(step.invoice_number), facts_by_number.get(step.invoice_number)
        if row is None or fact is None:
            ok = step.invoice_number in textable_numbers
            result.held[key] = REASON_NO_DOCUMENTS if ok else REASON_NO_NUMBER
            continue
        record = json.loads(str(row.record_json))
        chosen = language_for_country(str(fact.buyer_country)) if language == "auto" else language
        values = reminder_values(
            date.fromisoformat(str(fact.due_date)[:10]),
            Decimal(str(fact.amount_due)),
            Decimal(str(fact.amount_paid)),
            now,
            step.zone,
        )
        result.intents.append(
            build_intent(
                record,
                str(row.phone_e164),
                str(row.pdf_url),
                prices,
                purpose=step.purpose,
                requested_by=requested_by,
                run_id=run_id,
                template=rule_step.template_for(chosen),
                extra_values=values,
                stop_when_paid=rule.stop_when_paid,
                pausable=True,
            )
        )
    return result
