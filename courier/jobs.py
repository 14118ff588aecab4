"""The nightly job's steps, each over a batch: what Prefect tasks call (imperative shell).

Each step takes ``Services`` and returns plain counts, so the orchestration layer stays thin
and every step can be run and tested without Prefect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import httpx

from courier.ledger import now_utc
from courier.planning import intents_for, plan_on_issue
from courier.publishing import publish_batch
from courier.pulling import incremental_since, invoice_rows, parse_records
from courier.sending import Sender, SendReport
from courier.wiring import Services, sms_gateway

log = logging.getLogger(__name__)


def pull(services: Services) -> dict[str, int]:
    """Fetch new invoices from the source, clean phones, insert; record rejected records."""
    ledger, source = services.ledger, services.source
    since = incremental_since(ledger.latest_issued_at(source.name))
    parsed = parse_records(source.fetch_records(since))
    ledger.record_rejects(source.name, parsed.rejects)
    for reject in parsed.rejects:
        log.warning(
            "rejected record %s: field '%s': %s",
            reject["record_key"],
            reject["field"],
            reject["problem"],
        )
    known = ledger.known_invoice_numbers([i.number for i in parsed.invoices])
    fresh = [i for i in parsed.invoices if i.number not in known]
    inserted = ledger.insert_invoices(invoice_rows(fresh, source.name, now_utc()))
    return {
        "fetched": len(parsed.invoices) + len(parsed.rejects),
        "new": inserted,
        "already_known": len(known),
        "rejected": len(parsed.rejects),
    }


def documents_due(services: Services) -> list[str]:
    return services.ledger.invoices_needing_documents()


def publish(services: Services, numbers: Sequence[str]) -> dict[str, int]:
    return publish_batch(
        numbers, services.ledger, services.renderer, services.store, services.policy
    )


def plan_sends(services: Services) -> list[str]:
    """Invoice numbers whose on-issue SMS is due now."""
    ledger = services.ledger
    return list(plan_on_issue(ledger.send_candidates(), ledger.message_keys())["invoice_number"])


async def _with_sender(services: Services, work: Any) -> SendReport:
    async with httpx.AsyncClient() as client:
        sender = Sender(
            sms_gateway(services.settings, client),
            services.ledger,
            services.policy,
            concurrency=services.settings.sms_concurrency,
        )
        result: SendReport = await work(sender)
        return result


def reconcile(services: Services, run_id: str | None) -> dict[str, Any]:
    """Resolve sends a killed run left ``pending`` (look up first, never blindly resend)."""
    report = asyncio.run(_with_sender(services, lambda s: s.reconcile_pending(run_id)))
    return report.as_dict()


def send_on_issue(services: Services, numbers: Sequence[str], run_id: str | None) -> dict[str, Any]:
    """Build and send the on-issue SMS of ``numbers`` (already-sent ones are skipped)."""
    candidates = services.ledger.send_candidates()
    due = plan_on_issue(
        candidates[candidates["invoice_number"].isin(list(numbers))], services.ledger.message_keys()
    )
    intents = intents_for(
        due, services.prices, run_id=run_id, language=services.settings.sms_language
    )
    report = asyncio.run(_with_sender(services, lambda s: s.send_all(intents)))
    return report.as_dict()


def chunked(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
