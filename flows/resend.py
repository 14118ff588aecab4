"""Send chosen invoices again, on a person's request (the dashboard's "Send" and "Send All")."""

from __future__ import annotations

import uuid
from typing import Any

from prefect import flow, get_run_logger, runtime

from courier.settings import load_settings
from courier.snapshot import try_publish_snapshot
from courier.wiring import build_services
from tasks.steps import send_manual_sms


@flow(name="resend")
def resend(
    numbers: list[str], request_id: str, requested_by: str, channels: list[str] | None = None
) -> dict[str, Any]:
    """One message per invoice in ``numbers`` by each of ``channels`` (default SMS),
    charged, with a fresh link. The same ``request_id`` twice sends once: pass a new id
    for each press of the button."""
    logger = get_run_logger()
    run_id = str(runtime.flow_run.id or uuid.uuid4())
    services = build_services(load_settings())
    services.ledger.start_run(run_id, "resend")
    result = send_manual_sms(numbers, request_id, requested_by, run_id, channels or ["sms"])
    logger.info("resend %s by %s: %s", request_id, requested_by, result)
    summary = {**services.ledger.summary(run_id), "result": result}
    services.ledger.finish_run(run_id, summary)
    try_publish_snapshot(services.ledger)  # the dashboard's run history shows it finished
    services.close()
    return summary
