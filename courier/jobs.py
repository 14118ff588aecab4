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

from courier.ledger import now_utc
from courier.locks import exclusive, send_lock_path
from courier.planning import (
    ON_ISSUE,
    Intent,
    Plan,
    intents_for,
    manual_purpose,
    over_budget,
    plan_on_issue,
)
from courier.publishing import publish_batch
from courier.pulling import incremental_since, invoice_rows, invoice_updates, parse_records
from courier.ratelimit import pacer
from courier.receipts import poll_for_receipts
from courier.sending import Sender, SendReport
from courier.wiring import Services, sms_gateway

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


def _plan(
    services: Services,
    now: datetime,
    run_id: str | None = None,
    only: set[str] | None = None,
    purpose: str = ON_ISSUE,
    requested_by: str = "nightly",
    template: str | None = None,
) -> tuple[Plan, list[Intent]]:
    ledger, settings = services.ledger, services.settings
    candidates = ledger.send_candidates()
    if only is not None:
        candidates = candidates[candidates["invoice_number"].isin(list(only))]
    plan = plan_on_issue(
        candidates,
        ledger.message_keys(),
        opted_out=ledger.opted_out(),
        now=now,
        hours=settings.hours,
        purpose=purpose,
    )
    intents = intents_for(
        plan.due,
        services.prices,
        run_id=run_id,
        language=settings.sms_language,
        purpose=purpose,
        requested_by=requested_by,
        template=template,
    )
    return plan, intents


def plan_sends(services: Services, now: datetime | None = None) -> SendPlan:
    """Invoice numbers whose on-issue SMS is due now; the run's budget decides if any go."""
    plan, intents = _plan(services, now or now_utc())
    refused = over_budget(intents, services.settings.run_budget)
    if refused:
        log.warning(refused)
    return SendPlan(
        numbers=[] if refused else [i.invoice_number for i in intents],
        held=dict(Counter(plan.held.values())),
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


def send_manual(
    services: Services,
    numbers: Sequence[str],
    request_id: str,
    requested_by: str,
    run_id: str | None,
    template: str | None = None,
) -> dict[str, Any]:
    """A person's "send (again)": each request is a new, charged SMS with a fresh link; the
    same ``request_id`` twice (a double click, a retried flow) sends once. ``template``
    replaces the default on-issue text (the dashboard's "Send All" message template)."""
    purpose = manual_purpose(request_id)
    already = services.ledger.message_keys()
    fresh = [
        n
        for n in numbers
        if not ((already["invoice_number"] == n) & (already["purpose"] == purpose)).any()
    ]
    if fresh:  # a new link for the re-sent SMS (old links stay valid until they expire)
        publish(services, fresh)
    with _locked(services):
        plan, intents = _plan(
            services,
            now_utc(),
            run_id,
            only=set(numbers),
            purpose=purpose,
            requested_by=requested_by,
            template=template,
        )
        refused = over_budget(intents, services.settings.run_budget)
        if refused:
            return {"refused": refused, "held": plan.held}
        report = asyncio.run(_with_sender(services, lambda s: s.send_all(intents)))
    not_sendable = sorted(set(numbers) - {i.invoice_number for i in intents} - set(plan.held))
    return {**report.as_dict(), "held": plan.held, "not_sendable": not_sendable}


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
