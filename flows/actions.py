"""The dashboard's actions as Prefect flows: each press is a recorded run.

``edit-phone`` fixes a buyer's number; ``send-sms`` sends the chosen invoices now by SMS,
e-mail or both (the row actions and "Send All"), through ``courier.actions``. Each run is
recorded in the ledger's ``runs`` (with who asked), besides Prefect's own record.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from prefect import flow, get_run_logger, runtime

from courier import actions
from courier.ledger import Ledger
from courier.settings import load_settings
from courier.snapshot import try_publish_snapshot
from courier.wiring import build_services


def _run_id() -> str:
    return str(runtime.flow_run.id or uuid.uuid4())


@flow(name="edit-phone")
def edit_phone(invoice_number: str, new_raw: str, edited_by: str) -> dict[str, Any]:
    """Replace the buyer's number of one invoice (it must be a mobile number); the ledger
    keeps who changed it, when, and from what to what (``phone_edits``)."""
    logger = get_run_logger()
    run_id = _run_id()
    ledger = Ledger(load_settings().ledger_path)
    ledger.migrate()
    ledger.start_run(run_id, "edit-phone")
    result = actions.edit_phone(ledger, invoice_number, new_raw, edited_by)
    # Masked only: run summaries are shown on screens; the full numbers are in phone_edits.
    logger.info("edit-phone %s by %s: %s", invoice_number, edited_by, result)
    summary = {"result": result, "requested_by": edited_by}
    ledger.finish_run(run_id, summary)
    try_publish_snapshot(ledger)
    return {**summary, "run_id": run_id}


@flow(name="send-sms")
def send_sms(
    numbers: list[str],
    request_id: str,
    requested_by: str,
    template: str | None = None,
    channels: list[str] | None = None,
) -> dict[str, Any]:
    """One new, charged message per invoice in ``numbers`` by each of ``channels``
    (default SMS), with a fresh link; ``template`` replaces the default SMS text. The same
    ``request_id`` twice sends once."""
    logger = get_run_logger()
    run_id = _run_id()
    services = build_services(load_settings())
    try:
        services.ledger.start_run(run_id, "send-sms")
        result = actions.send_sms(
            services,
            numbers,
            request_id,
            requested_by,
            run_id,
            template=template,
            channels=tuple(channels or ("sms",)),
        )
        logger.info("send-sms %s by %s: %s", request_id, requested_by, result)
        summary = {
            **services.ledger.summary(run_id),
            "result": result,
            "request_id": request_id,
            "requested_by": requested_by,
            "invoices": len(numbers),
        }
        services.ledger.finish_run(run_id, summary)
        try_publish_snapshot(services.ledger)
    finally:
        services.close()
    return {**summary, "run_id": run_id}


@flow(name="pause-reminders")
def pause_reminders(scope: str, target: str, reason: str, paused_by: str) -> dict[str, Any]:
    """Stop chasing one invoice (``scope`` "invoice") or every invoice of its buyer
    ("buyer"); the ledger keeps who, when and why (``reminder_pauses``)."""

    def pause(ledger: Ledger) -> dict[str, Any]:
        pause_id = ledger.pause_reminders(scope, target, reason, paused_by)  # type: ignore[arg-type]
        return {"paused": True, "pause_id": pause_id}

    return _reminder_pause_action("pause-reminders", scope, target, paused_by, pause)


@flow(name="resume-reminders")
def resume_reminders(scope: str, target: str, reason: str, resumed_by: str) -> dict[str, Any]:
    """End the pauses in force for that invoice or buyer (the pause rows stay, with who
    resumed, when and why)."""

    def resume(ledger: Ledger) -> dict[str, Any]:
        return {"resumed": ledger.resume_reminders(scope, target, resumed_by, reason)}  # type: ignore[arg-type]

    return _reminder_pause_action("resume-reminders", scope, target, resumed_by, resume)


def _reminder_pause_action(
    name: str, scope: str, target: str, by: str, action: Callable[[Ledger], dict[str, Any]]
) -> dict[str, Any]:
    """Run one pause/resume ``action`` as a recorded run; a refusal (no such invoice or
    buyer, no reason) is the result, not a failed flow."""
    from courier.ledger.reminders import UnknownPauseTarget

    logger = get_run_logger()
    run_id = _run_id()
    ledger = Ledger(load_settings().ledger_path)
    ledger.migrate()
    ledger.start_run(run_id, name)
    try:
        result = {**action(ledger), "scope": scope, "target": target}
    except (UnknownPauseTarget, ValueError) as refused:
        result = {"refused": str(refused), "scope": scope, "target": target}
    logger.info("%s %s %s by %s: %s", name, scope, target, by, result)
    summary = {"result": result, "requested_by": by}
    ledger.finish_run(run_id, summary)
    try_publish_snapshot(ledger)
    return {**summary, "run_id": run_id}
