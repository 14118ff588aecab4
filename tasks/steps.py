"""The nightly job's tasks. Each opens its own services from settings (cheap), so a task
can run in any worker thread or process."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from courier import jobs
from courier.ledger import LedgerBusy
from courier.settings import load_settings
from courier.snapshot import try_publish_snapshot
from courier.wiring import build_services

# Task-level retries cover a whole batch failing (e.g. the ledger briefly locked); per-call
# retries of outside services live in courier.retry. Sends are never retried here: the
# outbox decides what may go out again.
_BATCH_RETRIES = 2
_BATCH_RETRY_DELAY_S = 5


def _run(step: Any, *args: Any) -> Any:
    """Run one ``courier.jobs`` step; then publish the ledger's snapshot for the dashboard
    (``courier.snapshot``: ~0.35 s at 100k invoices), also after a step that failed half
    way, since what it wrote is committed. Steps that only read publish nothing, and a
    snapshot that cannot be written never fails the step."""
    services = build_services(load_settings())
    publish = step not in (jobs.documents_due, jobs.plan_sends)
    try:
        return step(services, *args)
    except LedgerBusy:
        publish = False  # it would wait for the same lock again
        raise
    finally:
        if publish:
            try_publish_snapshot(services.ledger)
        services.close()


@task(
    name="pull-invoices",
    retries=_BATCH_RETRIES,
    retry_delay_seconds=_BATCH_RETRY_DELAY_S,
    cache_policy=NO_CACHE,
)
def pull_invoices() -> dict[str, int]:
    return _run(jobs.pull)


@task(name="documents-due", cache_policy=NO_CACHE)
def documents_due() -> list[str]:
    return _run(jobs.documents_due)


@task(
    name="publish-documents",
    retries=_BATCH_RETRIES,
    retry_delay_seconds=_BATCH_RETRY_DELAY_S,
    cache_policy=NO_CACHE,
)
def publish_documents(numbers: Sequence[str]) -> dict[str, int]:
    return _run(jobs.publish, numbers)


@task(name="reconcile-pending-sends", cache_policy=NO_CACHE)
def reconcile_pending_sends(run_id: str) -> dict[str, Any]:
    return _run(jobs.reconcile, run_id)


@task(name="plan-sends", cache_policy=NO_CACHE)
def plan_sends() -> dict[str, Any]:
    plan = _run(jobs.plan_sends)
    return {"numbers": plan.numbers, **plan.as_dict()}


@task(name="poll-delivery-receipts", cache_policy=NO_CACHE)
def poll_delivery_receipts() -> dict[str, int]:
    return _run(jobs.poll_receipts)


@task(name="send-sms-batch", cache_policy=NO_CACHE)
def send_sms_batch(numbers: Sequence[str], run_id: str) -> dict[str, Any]:
    return _run(jobs.send_on_issue, numbers, run_id)


@task(name="send-manual-sms", cache_policy=NO_CACHE)
def send_manual_sms(
    numbers: Sequence[str],
    request_id: str,
    requested_by: str,
    run_id: str,
    channels: Sequence[str] = ("sms",),
) -> dict[str, Any]:
    # send_manual(services, numbers, request_id, requested_by, run_id, template, channels)
    return _run(jobs.send_manual, numbers, request_id, requested_by, run_id, None, tuple(channels))


@task(name="plan-reminders", cache_policy=NO_CACHE)
def plan_reminders(as_of: datetime | None, run_id: str) -> dict[str, Any]:
    plan = _run(jobs.plan_reminders, as_of, run_id)
    return {"keys": plan.keys, **plan.as_dict()}


@task(name="send-reminder-batch", cache_policy=NO_CACHE)
def send_reminder_batch(keys: Sequence[str], run_id: str, as_of: datetime | None) -> dict[str, Any]:
    return _run(jobs.send_reminders, keys, run_id, as_of)


@task(name="send-reminder-now", cache_policy=NO_CACHE)
def send_reminder_now(
    invoice_number: str, rule_id: str, step_id: str, requested_by: str, run_id: str
) -> dict[str, Any]:
    return _run(jobs.send_reminder_now, invoice_number, rule_id, step_id, requested_by, run_id)
