"""Payment reminders: pull (payments current) -> documents -> reconcile -> plan the due
rule steps -> send in batches -> receipts. Safe to run as often as you like, and twice at
once: each step of each rule goes to an invoice once (its key in the outbox)."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, runtime

from courier.jobs import chunked
from courier.settings import load_settings
from courier.snapshot import try_publish_snapshot
from courier.wiring import build_services
from tasks.steps import (
    documents_due,
    plan_reminders,
    poll_delivery_receipts,
    publish_documents,
    pull_invoices,
    reconcile_pending_sends,
    send_reminder_batch,
)
from tasks.steps import send_reminder_now as send_reminder_now_task


@flow(name="reminders")
def reminders(as_of: datetime | None = None, batch_size: int | None = None) -> dict[str, Any]:
    """Send the reminder steps due now (``as_of``: plan as if it were that moment, for
    demos and catching up a given day) by the rules file; returns the run's summary."""
    logger = get_run_logger()
    settings = load_settings()
    size = batch_size or settings.batch_size
    run_id = str(runtime.flow_run.id or uuid.uuid4())
    services = build_services(settings)
    rules = services.reminder_rules()  # a broken file stops here, its problems named
    services.ledger.start_run(run_id, "reminders")
    logger.info("%d active reminder rule(s) from %s", len(rules.active), rules.source)

    pulled = pull_invoices()  # payments recorded since the last pull stop their reminders
    logger.info("pulled: %s", pulled)
    published: Counter[str] = Counter()
    for batch in chunked(documents_due(), size):
        published.update(publish_documents(batch))

    reconciled = reconcile_pending_sends(run_id)
    plan = plan_reminders(as_of, run_id)
    if plan["refused"]:
        logger.warning(plan["refused"])
    logger.info("reminders due: %d; skipped: %s; held: %s", plan["due"], plan["skipped"],
                plan["held"])  # fmt: skip
    sent: Counter[str] = Counter()
    for batch in chunked(plan["keys"], size):
        result = send_reminder_batch(batch, run_id, as_of)
        sent.update({k: v for k, v in result.items() if k != "charged"})
    logger.info("reminders: %s (reconciled: %s)", dict(sent), reconciled)
    receipts = poll_delivery_receipts()

    summary = services.ledger.summary(run_id)
    skipped = Counter(plan["skipped"])
    for outcome, count in sent.items():  # changed between planning and sending
        if outcome.startswith("skipped_") and outcome.endswith("_at_send"):
            skipped[outcome.removeprefix("skipped_").removesuffix("_at_send")] += count
    summary.update(
        as_of=plan["as_of"],
        pulled_new=pulled["new"],
        pulled_updated=pulled["updated"],
        paid_since_last_pull=pulled["paid_since_last_pull"],
        documents=dict(published),
        reminders_due=plan["due"],
        reminders_sent=sent.get("accepted", 0) + sent.get("email_accepted", 0),
        reminders_emailed=sent.get("email_accepted", 0),
        reminders_skipped_paid=skipped.get("paid", 0),
        reminders_skipped=dict(skipped),
        reminders_skipped_before=plan["skipped_before"],
        reminders_held=plan["held"],
        reminder_outcomes=dict(sent),
        refused=plan["refused"],
        receipts=receipts,
    )
    services.ledger.finish_run(run_id, summary)
    try_publish_snapshot(services.ledger)
    services.close()
    return summary


@flow(name="send-reminder-now")
def send_reminder_now(invoice_number: str, rule_id: str, step_id: str, by: str) -> dict[str, Any]:
    """A person's "send now" of one reminder step (dashboard or CLI): the step's own key,
    so the scheduled run never repeats it. Recorded as a run with who asked."""
    logger = get_run_logger()
    run_id = str(runtime.flow_run.id or uuid.uuid4())
    services = build_services(load_settings())
    services.ledger.start_run(run_id, "send-reminder-now")
    result = send_reminder_now_task(invoice_number, rule_id, step_id, by, run_id)
    logger.info("reminder %s:%s of %s by %s: %s", rule_id, step_id, invoice_number, by, result)
    summary = {**services.ledger.summary(run_id), "result": result, "requested_by": by}
    services.ledger.finish_run(run_id, summary)
    try_publish_snapshot(services.ledger)
    services.close()
    return summary
