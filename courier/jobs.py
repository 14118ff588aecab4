"""The nightly job's steps, each over a batch: what Prefect tasks call (imperative shell).

Each step takes ``Services`` and returns plain counts, so the orchestration layer stays thin
and every step can be run and tested without Prefect.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx

from courier.channels import EMAIL, SMS
from courier.email_planning import email_intents_for, plan_email
from courier.ledger import Ledger, now_utc
from courier.locks import exclusive, send_lock_path
from courier.messages import PriceTable
from courier.planning import (
    ON_ISSUE,
    Intent,
    idempotency_key,
    intents_for,
    manual_purpose,
    over_budget,
    plan_on_issue,
)
from courier.publishing import publish_batch
from courier.pulling import incremental_since, invoice_rows, invoice_updates, parse_records
from courier.ratelimit import pacer
from courier.receipts import poll_for_receipts
from courier.reminders.intents import ReminderIntents, reminder_intents
from courier.reminders.planning import (
    DueStep,
    StepPlan,
    plan_steps,
    purposes_in_outbox,
    reminder_purpose,
)
from courier.reminders.rules import RuleSet
from courier.reminders.schedule import seller_timezone
from courier.sending import Sender, SendReport
from courier.settings import Settings
from courier.wiring import Services, email_channel, email_options, sms_gateway

log = logging.getLogger(__name__)


def pull(services: Services) -> dict[str, int]:
    """Fetch new invoices from the source, clean phones, insert; record rejected records."""
    ledger, source = services.ledger, services.source
    since = incremental_since(ledger.latest_issued_at(source.name))
    changed_since = incremental_since(ledger.latest_erp_update(source.name))
    parsed = parse_records(source.fetch_records(since, changed_since))
    ledger.record_rejects(source.name, parsed.rejects)
    for reject in parsed.rejects:
        log.warning(
            "rejected record %s: field '%s': %s",
            reject["record_key"],
            reject["field"],
            reject["problem"],
        )
    state = ledger.tracked_state([i.number for i in parsed.invoices])
    known = set(state["invoice_number"])
    fresh = [i for i in parsed.invoices if i.number not in known]
    now = now_utc()
    inserted = ledger.insert_invoices(invoice_rows(fresh, source.name, now))
    updates = invoice_updates(state, [i for i in parsed.invoices if i.number in known], now)
    updated = ledger.apply_invoice_updates(updates, source.name, changed_by="pull")
    return {
        "fetched": len(parsed.invoices) + len(parsed.rejects),
        "new": inserted,
        "already_known": len(known),
        "updated": updated,
        "paid_since_last_pull": sum(
            1
            for u in updates
            if any(f == "payment_status" and new == "paid" for f, _, new in u.changes)
        ),
        "rejected": len(parsed.rejects),
    }


def documents_due(services: Services) -> list[str]:
    return services.ledger.invoices_needing_documents()


def publish(services: Services, numbers: Sequence[str]) -> dict[str, int]:
    return publish_batch(
        numbers,
        services.ledger,
        services.renderer,
        services.store,
        services.policy,
        services.settings.xml_profile_overrides,
    )


@dataclass
class SendPlan:
    numbers: list[str]
    held: dict[str, int]  # reason -> invoices held back by a guard rail
    quoted: Decimal
    refused: str | None  # why the run sends nothing (budget), or None

    def as_dict(self) -> dict[str, Any]:
        return {
            "due": len(self.numbers),
            "held": self.held,
            "quoted": str(self.quoted),
            "refused": self.refused,
        }


#: Every channel a send may go by; a person's request may name fewer.
ALL_CHANNELS = (SMS, EMAIL)


def _plan(
    services: Services,
    now: datetime,
    run_id: str | None = None,
    only: set[str] | None = None,
    purpose: str = ON_ISSUE,
    requested_by: str = "nightly",
    template: str | None = None,
    channels: Sequence[str] = ALL_CHANNELS,
) -> tuple[dict[str, str], list[Intent]]:
    """The intents due now by each of ``channels`` (e-mail only when configured), and
    what is held (invoice number -> reason; an e-mail's as "<number> (e-mail)")."""
    ledger, settings = services.ledger, services.settings
    candidates = ledger.send_candidates()
    if only is not None:
        candidates = candidates[candidates["invoice_number"].isin(list(only))]
    messages = ledger.message_keys(sorted(only) if only is not None else None)
    held: dict[str, str] = {}
    intents: list[Intent] = []
    if SMS in channels:
        plan = plan_on_issue(
            candidates,
            messages,
            opted_out=ledger.opted_out(),
            now=now,
            hours=settings.hours,
            purpose=purpose,
        )
        held.update(plan.held)
        intents += intents_for(
            plan.due,
            services.prices,
            run_id=run_id,
            language=settings.sms_language,
            purpose=purpose,
            requested_by=requested_by,
            template=template,
        )
    options = email_options(settings, services.prices)
    if EMAIL in channels and options is not None:
        mail = plan_email(
            candidates,
            messages,
            bounced=ledger.bounced_addresses(),
            now=now,
            hours=settings.email_hours,
            purpose=purpose,
        )
        built, refused = email_intents_for(
            mail.due, options, run_id=run_id, purpose=purpose, requested_by=requested_by
        )
        intents += built
        held.update({f"{n} (e-mail)": why for n, why in {**mail.held, **refused}.items()})
    return held, intents


def plan_sends(services: Services, now: datetime | None = None) -> SendPlan:
    """Invoice numbers whose on-issue SMS is due now; the run's budget decides if any go."""
    held, intents = _plan(services, now or now_utc())
    refused = over_budget(intents, services.settings.run_budget)
    if refused:
        log.warning(refused)
    return SendPlan(
        numbers=[] if refused else list(dict.fromkeys(i.invoice_number for i in intents)),
        held=dict(Counter(held.values())),
        quoted=sum((i.amount for i in intents), Decimal(0)),
        refused=refused,
    )


def _sender(services: Services, client: httpx.AsyncClient) -> Sender:
    settings = services.settings
    limiter = pacer(settings.sms_rate_per_s) if settings.sms_rate_per_s else None
    return Sender(
        sms_gateway(settings, client),
        services.ledger,
        services.policy,
        concurrency=settings.sms_concurrency,
        limiter=limiter,
        email=email_channel(settings, client),
        email_concurrency=settings.email_concurrency,
    )


async def _with_sender(services: Services, work: Any) -> SendReport:
    async with httpx.AsyncClient() as client:
        result: SendReport = await work(_sender(services, client))
        return result


def _locked(services: Services) -> Any:
    return exclusive(send_lock_path(services.ledger.path))


def reconcile(services: Services, run_id: str | None) -> dict[str, Any]:
    """Resolve sends a killed run left ``pending`` (look up first, never blindly resend)."""
    with _locked(services):
        report = asyncio.run(_with_sender(services, lambda s: s.reconcile_pending(run_id)))
    return report.as_dict()


def send_on_issue(services: Services, numbers: Sequence[str], run_id: str | None) -> dict[str, Any]:
    """Build and send the on-issue SMS of ``numbers`` (already-sent ones are skipped)."""
    with _locked(services):
        _, intents = _plan(services, now_utc(), run_id, only=set(numbers))
        report = asyncio.run(_with_sender(services, lambda s: s.send_all(intents)))
    return report.as_dict()


def plan_manual(
    services: Services,
    numbers: Sequence[str],
    request_id: str,
    requested_by: str,
    run_id: str | None = None,
    template: str | None = None,
    channels: Sequence[str] = (SMS,),
) -> tuple[dict[str, str], list[Intent]]:
    """What a person's send of ``numbers`` would hold and send now (``send_manual``
    plans the same, under the send lock)."""
    return _plan(
        services,
        now_utc(),
        run_id,
        only=set(numbers),
        purpose=manual_purpose(request_id),
        requested_by=requested_by,
        template=template,
        channels=channels,
    )


def send_manual(
    services: Services,
    numbers: Sequence[str],
    request_id: str,
    requested_by: str,
    run_id: str | None,
    template: str | None = None,
    channels: Sequence[str] = (SMS,),
) -> dict[str, Any]:
    """A person's "send (again)": each request is a new message by each of ``channels``
    (charged like any other) with a fresh link; the same ``request_id`` twice (a double
    click, a retried flow) sends once. ``template`` replaces the default on-issue SMS text
    (the dashboard's "Send All" message template); an e-mail keeps its template files."""
    purpose = manual_purpose(request_id)
    already = services.ledger.message_keys(list(numbers))
    mine = (already["purpose"] == purpose) & already["channel"].isin(list(channels))
    requested = set(already.loc[mine, "invoice_number"])
    fresh = [n for n in numbers if n not in requested]
    if fresh:  # a new link for the re-sent message (old links stay valid until they expire)
        publish(services, fresh)
    with _locked(services):
        held, intents = plan_manual(
            services, numbers, request_id, requested_by, run_id, template, channels
        )
        refused = over_budget(intents, services.settings.run_budget)
        if refused:
            return {"refused": refused, "held": held}
        report = asyncio.run(_with_sender(services, lambda s: s.send_all(intents)))
    held_numbers = {key.removesuffix(" (e-mail)") for key in held}
    not_sendable = sorted(set(numbers) - {i.invoice_number for i in intents} - held_numbers)
    return {**report.as_dict(), "held": held, "not_sendable": not_sendable}


# --------------------------------------------------------------------------- reminders


@dataclass
class ReminderPlan:
    keys: list[str]  # the intents to send (idempotency keys)
    held: dict[str, int]  # reason -> steps held back by a guard rail (a later run decides)
    skipped: dict[str, int]  # reason code -> steps newly not sent (see reminder_skips)
    skipped_before: int  # steps still due whose skip an earlier run recorded
    quoted: Decimal
    refused: str | None  # why the run sends nothing (budget), or None
    as_of: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "due": len(self.keys),
            "held": self.held,
            "skipped": self.skipped,
            "skipped_before": self.skipped_before,
            "quoted": str(self.quoted),
            "refused": self.refused,
            "as_of": self.as_of.isoformat(),
        }


def reminders_due(
    ledger: Ledger,
    rules: RuleSet,
    prices: PriceTable,
    settings: Settings,
    now: datetime,
    run_id: str | None = None,
    steps: Sequence[DueStep] | None = None,
    requested_by: str = "reminders",
    only: Sequence[str] | None = None,
) -> tuple[StepPlan, ReminderIntents]:
    """The steps due at ``now`` (or the given ``steps``: a person's "send now") as
    intents, through the same guard rails as the on-issue SMS; of the invoices ``only``
    when given (a batch, planned again right before it is sent). Reads only (the
    dashboard's preview calls it with its own ledger handle)."""
    if steps is not None:
        only = sorted({step.invoice_number for step in steps})
    facts = ledger.reminder_facts(only)
    if steps is None:
        plan = plan_steps(facts, purposes_in_outbox(ledger.message_keys(only)), rules, now)
    else:
        plan = StepPlan(due=list(steps))
    candidates = ledger.send_candidates()
    if only is not None:
        candidates = candidates[candidates["invoice_number"].isin(list(only))]
    intents = reminder_intents(
        plan.due,
        facts,
        candidates,
        rules,
        prices,
        now=now,
        opted_out=ledger.opted_out(),
        hours=settings.hours,
        language=settings.sms_language,
        run_id=run_id,
        requested_by=requested_by,
        email=email_options(settings, prices),
        bounced=ledger.bounced_addresses(),
        email_hours=settings.email_hours,
    )
    return plan, intents


def _reminders_due(
    services: Services,
    now: datetime,
    run_id: str | None,
    steps: Sequence[DueStep] | None = None,
    requested_by: str = "reminders",
    only: Sequence[str] | None = None,
) -> tuple[StepPlan, ReminderIntents]:
    return reminders_due(
        services.ledger,
        services.reminder_rules(),
        services.prices,
        services.settings,
        now,
        run_id,
        steps,
        requested_by,
        only,
    )


def plan_reminders(
    services: Services, as_of: datetime | None = None, run_id: str | None = None
) -> ReminderPlan:
    """The reminder steps due at ``as_of`` (default now) and why others are not sent;
    records the skipped steps; the run's budget decides if any go."""
    now = as_of or now_utc()
    plan, built = _reminders_due(services, now, run_id)
    fresh = services.ledger.record_reminder_skips(plan.skips, run_id)
    refused = over_budget(built.intents, services.settings.run_budget)
    if refused:
        log.warning(refused)
    new = [s for s in plan.skips if (s.invoice_number, s.rule_id, s.step_id) in fresh]
    return ReminderPlan(
        keys=[] if refused else [i.idempotency_key for i in built.intents],
        held=dict(Counter(built.held.values())),
        skipped=dict(Counter(skip.reason_code for skip in new)),
        skipped_before=len(plan.skips) - len(new),
        quoted=sum((i.amount for i in built.intents), Decimal(0)),
        refused=refused,
        as_of=now,
    )


def preview_reminders(
    ledger: Ledger,
    rules: RuleSet,
    prices: PriceTable,
    settings: Settings,
    as_of: datetime | None = None,
) -> dict[str, Any]:
    """What ``plan_reminders`` would send at ``as_of`` and what it would cost, writing
    nothing: one row per SMS (number masked), the held and skipped counts, the total."""
    now = as_of or now_utc()
    plan, built = reminders_due(ledger, rules, prices, settings, now)
    return {
        "as_of": now.isoformat(),
        "sms": [
            {
                "invoice_number": i.invoice_number,
                "step": i.purpose.removeprefix("reminder:"),
                "channel": i.channel,
                "to": i.recipient_masked,
                "country": i.destination_country,
                "segments": i.segments,
                "amount": str(i.amount),
                "currency": i.currency,
                "text": i.body,
            }
            for i in built.intents
        ],
        "held": dict(Counter(built.held.values())),
        "skipped": dict(Counter(skip.reason_code for skip in plan.skips)),
        "quoted": str(sum((i.amount for i in built.intents), Decimal(0))),
        "refused": over_budget(built.intents, settings.run_budget),
    }


def send_reminders(
    services: Services, keys: Sequence[str], run_id: str | None, as_of: datetime | None = None
) -> dict[str, Any]:
    """Send the reminder intents ``keys`` (from ``plan_reminders``), planned again under
    the send lock: a step another run sent meanwhile is no longer due, and the claim
    checks STOP, payment and pauses once more."""
    wanted = set(keys)
    numbers = sorted({key.split(":reminder:", 1)[0] for key in wanted})
    with _locked(services):
        plan, built = _reminders_due(services, as_of or now_utc(), run_id, only=numbers)
        intents = [i for i in built.intents if i.idempotency_key in wanted]
        # Paid or paused since the plan: skipped now, with the reason, like the plan's skips.
        changed = [
            skip
            for skip in plan.skips
            if {
                idempotency_key(
                    skip.invoice_number, reminder_purpose(skip.rule_id, skip.step_id), c
                )
                for c in ALL_CHANNELS
            }
            & wanted
        ]
        services.ledger.record_reminder_skips(changed, run_id)
        report = asyncio.run(_with_sender(services, lambda s: s.send_all(intents)))
    for skip in changed:
        report.outcomes[f"skipped_{skip.reason_code}_at_send"] += 1
    result = report.as_dict()
    gone = len(wanted) - len(intents) - len(changed)
    if gone:  # sent by another run meanwhile, or out of sending hours by now
        result["no_longer_due"] = gone
    return result


def send_reminder_now(
    services: Services,
    invoice_number: str,
    rule_id: str,
    step_id: str,
    requested_by: str,
    run_id: str | None = None,
) -> dict[str, Any]:
    """A person's "send now" of one reminder step: the step's own key, so the scheduled
    run does not repeat it (nor send an earlier step after it). The guard rails, the
    budget and the claim's checks (STOP, paid, paused) apply as for a scheduled step."""
    rules = services.reminder_rules()
    rule = rules.rule(rule_id)
    rule.step(step_id)  # KeyError naming the rule when there is no such step
    row = services.ledger.reminder_facts([invoice_number])
    if row.empty:
        raise KeyError(f"no invoice {invoice_number!r}")
    fact = row.iloc[0]
    now = now_utc()
    zone = seller_timezone(str(fact["seller_country"]), str(fact["seller_timezone"] or ""))
    step = DueStep(invoice_number, rule_id, step_id, now, zone)
    with _locked(services):
        _, built = _reminders_due(services, now, run_id, [step], requested_by=requested_by)
        if not built.intents:
            return {"held": built.held}
        refused = over_budget(built.intents, services.settings.run_budget)
        if refused:
            return {"refused": refused}
        report = asyncio.run(_with_sender(services, lambda s: s.send_all(built.intents)))
    return report.as_dict()


def poll_receipts(services: Services, limit: int = 1000) -> dict[str, int]:
    """Fallback for lost status callbacks: fetch messages still without a final status."""

    async def run() -> dict[str, int]:
        async with httpx.AsyncClient() as client:
            return await poll_for_receipts(
                sms_gateway(services.settings, client),
                services.ledger,
                services.settings.receipt_poll_after_s,
                services.settings.sms_concurrency,
                limit,
            )

    return asyncio.run(run())


def chunked(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
