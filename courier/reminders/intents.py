"""From due reminder steps to outbox intents (pure): the same intents, guard rails and
prices as the on-issue messages, with the step's template and the reminder's own values.

A due step becomes one ``Intent`` per channel it goes by, keyed
``<invoice>:reminder:<rule>:<step>`` (an e-mail's with ``:email`` after it), so a step
goes out once however often (or however many at once) the flow runs. It carries
``stop_when_paid`` (the rule's) and ``pausable``: the outbox checks both again in the
claim, right before sending. The rest is each channel's guard rails, shared with the
on-issue messages: for an SMS ``courier.planning.guard_rails`` (a textable number, both
documents stored, no STOP, the buyer's sending hours), for an e-mail
``courier.email_planning.email_guard_rails`` (a valid address that has not bounced, the
documents, e-mail's hours). An e-mail reminder is the step's text inside the reminder
e-mail templates, with the invoice attached again; it never copies ETDA's time stamp.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from courier.channels import EMAIL
from courier.email_planning import (
    EmailOptions,
    NotSendable,
    build_email_intent,
    email_guard_rails,
)
from courier.invoice_io import invoice_from_dict
from courier.messages import PriceTable, invoice_sms_values, language_for_country, render_sms
from courier.planning import (
    Intent,
    Plan,
    SendingHours,
    build_intent,
    guard_rails,
    idempotency_key,
    wants_channel,
)
from courier.reminders.planning import DueStep, reminder_values
from courier.reminders.rules import RuleSet

#: A step on a channel that is not configured waits (held, not skipped), so it goes out
#: once the channel is set up and the step is still in grace.
REASON_CHANNEL_UNAVAILABLE = "Waiting for the {channel} channel (not configured)"
REASON_NO_NUMBER = "No textable number"
REASON_NO_ADDRESS = "No usable e-mail address"
REASON_NO_DOCUMENTS = "Documents not stored yet"
REASON_BUYER_CHANNEL = "The buyer asked for {preference} only"


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
    email: EmailOptions | None = None,
    bounced: set[str] | frozenset[str] = frozenset(),
    email_hours: SendingHours | None = None,
) -> ReminderIntents:
    """One intent per due step and channel that passes the guard rails; the others
    ``held`` (by intent key) with the reason a person reads.

    ``facts`` is ``Ledger.reminder_facts()`` (amounts as exact text), ``candidates``
    ``Ledger.send_candidates()``. ``language`` is the SMS language setting: ``auto``
    picks by the buyer's country; a step without that language uses its English text.
    ``email`` is None while the e-mail channel is not configured: e-mail steps wait.
    """
    result = ReminderIntents()
    if not due:
        return result
    numbers = sorted({step.invoice_number for step in due})
    mine = candidates[candidates["invoice_number"].isin(numbers)]
    textable_numbers = set(mine.loc[mine["phone_status"] == "ok", "invoice_number"])
    checked = guard_rails(mine, opted_out, now, hours)
    ready = {str(row.invoice_number): row for row in checked.due.itertuples(index=False)}
    mailable = (
        email_guard_rails(mine, bounced, now, email_hours)
        if email is not None
        else Plan(mine.iloc[0:0], {})
    )
    ready_mail = {str(row.invoice_number): row for row in mailable.due.itertuples(index=False)}
    preference = dict(
        zip(mine["invoice_number"], mine.get("channel_preference", pd.Series()), strict=False)
    )
    facts_by_number = {
        str(row.invoice_number): row
        for row in facts[facts["invoice_number"].isin(numbers)].itertuples(index=False)
    }
    available = {"sms"} | ({EMAIL} if email is not None else set())
    for step in due:
        rule = rules.rule(step.rule_id)
        rule_step = rule.step(step.step_id)
        sms_key = idempotency_key(step.invoice_number, step.purpose)
        usable = [c for c in rule_step.channels if c in available]
        if not usable:
            missing = "/".join(rule_step.channels)
            result.held[sms_key] = REASON_CHANNEL_UNAVAILABLE.format(channel=missing)
            continue
        chosen_pref = preference.get(step.invoice_number)
        wanted = [c for c in usable if wants_channel(chosen_pref, c)]
        if not wanted:
            reason = REASON_BUYER_CHANNEL.format(preference=chosen_pref)
            result.held[sms_key] = reason
            continue
        fact = facts_by_number.get(step.invoice_number)
        if fact is None:
            result.held[sms_key] = REASON_NO_DOCUMENTS
            continue
        chosen = language_for_country(str(fact.buyer_country)) if language == "auto" else language
        values = reminder_values(
            date.fromisoformat(str(fact.due_date)[:10]),
            Decimal(str(fact.amount_due)),
            Decimal(str(fact.amount_paid)),
            now,
            step.zone,
        )
        template = rule_step.template_for(chosen)
        if "sms" in wanted:
            _sms_step(result, step, rule.stop_when_paid, template, values, checked.held,
                      ready, textable_numbers, prices, run_id, requested_by)  # fmt: skip
        if EMAIL in wanted and email is not None:
            _email_step(result, step, rule.stop_when_paid, template, values, mailable.held,
                        ready_mail, email, run_id, requested_by)  # fmt: skip
    return result


def _sms_step(
    result: ReminderIntents,
    step: DueStep,
    stop_when_paid: bool,
    template: str,
    values: dict[str, str],
    held: dict[str, str],
    ready: dict[str, Any],
    textable_numbers: set[str],
    prices: PriceTable,
    run_id: str | None,
    requested_by: str,
) -> None:
    key = idempotency_key(step.invoice_number, step.purpose)
    if step.invoice_number in held:
        result.held[key] = held[step.invoice_number]
        return
    row = ready.get(step.invoice_number)
    if row is None:
        ok = step.invoice_number in textable_numbers
        result.held[key] = REASON_NO_DOCUMENTS if ok else REASON_NO_NUMBER
        return
    result.intents.append(
        build_intent(
            json.loads(str(row.record_json)),
            str(row.phone_e164),
            str(row.pdf_url),
            prices,
            purpose=step.purpose,
            requested_by=requested_by,
            run_id=run_id,
            template=template,
            extra_values=values,
            stop_when_paid=stop_when_paid,
            pausable=True,
        )
    )


def _email_step(
    result: ReminderIntents,
    step: DueStep,
    stop_when_paid: bool,
    template: str,
    values: dict[str, str],
    held: dict[str, str],
    ready: dict[str, Any],
    options: EmailOptions,
    run_id: str | None,
    requested_by: str,
) -> None:
    key = idempotency_key(step.invoice_number, step.purpose, EMAIL)
    if step.invoice_number in held:
        result.held[key] = held[step.invoice_number]
        return
    row = ready.get(step.invoice_number)
    if row is None:
        result.held[key] = REASON_NO_ADDRESS
        return
    record = json.loads(str(row.record_json))
    # The step's own text (as its SMS would read) is the e-mail's message.
    sms_values = invoice_sms_values(invoice_from_dict(record), str(row.pdf_url))
    message = render_sms(template, **{**sms_values, **values})
    size = getattr(row, "pdf_bytes", None)
    try:
        result.intents.append(
            build_email_intent(
                record,
                str(row.buyer_email),
                str(row.pdf_url),
                None if pd.isna(size) else int(size),
                options,
                purpose=step.purpose,
                requested_by=requested_by,
                run_id=run_id,
                kind="reminder",
                extra_values={**values, "message": message},
                stop_when_paid=stop_when_paid,
                pausable=True,
                etax_copy=False,
            )
        )
    except NotSendable as why:
        result.held[key] = str(why)
