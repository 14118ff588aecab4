"""The nightly send: pull -> documents -> reconcile -> plan -> send -> receipts, in batches."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from prefect import flow, get_run_logger, runtime

from courier.jobs import chunked
from courier.settings import load_settings
from courier.snapshot import try_publish_snapshot
from courier.wiring import build_services
from tasks.steps import (
    documents_due,
    plan_sends,
    poll_delivery_receipts,
    publish_documents,
    pull_invoices,
    reconcile_pending_sends,
    send_sms_batch,
)


@flow(name="nightly-send")
def nightly_send(batch_size: int | None = None) -> dict[str, Any]:
    """Send every newly issued invoice to its buyer; returns the run's summary."""
    logger = get_run_logger()
    settings = load_settings()
    size = batch_size or settings.batch_size
    run_id = str(runtime.flow_run.id or uuid.uuid4())
    services = build_services(settings)
    services.ledger.start_run(run_id, "nightly-send")

    pulled = pull_invoices()
    logger.info("pulled: %s", pulled)

    published: Counter[str] = Counter()
    for batch in chunked(documents_due(), size):
        published.update(publish_documents(batch))
    logger.info("documents: %s", dict(published))

    # Rows a killed run left half-sent are settled before anything new goes out.
    reconciled = reconcile_pending_sends(run_id)
    plan = plan_sends()
    if plan["refused"]:
        logger.warning(plan["refused"])
    if plan["held"]:
        logger.info("held back: %s", plan["held"])
    sent: Counter[str] = Counter()
    emailed: Counter[str] = Counter()
    for batch in chunked(plan["numbers"], size):
        for key, value in send_sms_batch(batch, run_id).items():
            if key.startswith("email_"):
                emailed[key.removeprefix("email_")] += value
            elif key != "charged":
                sent[key] += value
    logger.info("sms: %s, e-mail: %s (reconciled: %s)", dict(sent), dict(emailed), reconciled)
    receipts = poll_delivery_receipts()

    summary = services.ledger.summary(run_id)
    summary.update(
        pulled_new=pulled["new"],
        pulled_rejected=pulled["rejected"],
        documents=dict(published),
        sms_outcomes=dict(sent),
        email_outcomes=dict(emailed),
        held=plan["held"],
        refused=plan["refused"],
        receipts=receipts,
    )
    services.ledger.finish_run(run_id, summary)
    try_publish_snapshot(services.ledger)  # the dashboard's run history shows it finished
    services.close()
    return summary
