"""The dashboard's writes (imperative shell): fix a buyer's number, send, send all.

The dashboard calls these through the Prefect flows of ``flows/actions.py``, so every
action is a recorded run; the functions themselves need neither Prefect nor Streamlit.
Sending is ``courier.jobs.send_manual`` — the nightly run's own outbox protocol — so a
press is one intent per invoice (``manual:<request_id>``), charged once, and the same
request arriving twice (a double click, a retried flow) sends once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from courier import jobs
from courier.channels import EMAIL, SMS
from courier.ledger import Ledger, PhoneNotTextable, UnknownInvoice, now_utc
from courier.messages import PriceTable
from courier.phones import mask_phone
from courier.planning import manual_purpose, over_budget
from courier.screens import SendAllPreview, preview_send_all
from courier.settings import Settings
from courier.wiring import Services, email_options

log = logging.getLogger(__name__)


def current_phone(ledger: Ledger, invoice_number: str) -> tuple[str, str] | None:
    """(raw telephone field, buyer country) for the edit dialog; None for no such invoice."""
    return ledger.invoice_phone(invoice_number)


def edit_phone(ledger: Ledger, invoice_number: str, new_raw: str, edited_by: str) -> dict[str, Any]:
    """Replace one invoice's buyer number (cleaned like a pull; must be a mobile number).

    Returns ``updated`` and, for screens and run summaries, only the *masked* number:
    the full old and new numbers live in the ledger's ``phone_edits`` row.
    """
    try:
        result = ledger.edit_phone(invoice_number, new_raw, edited_by)
    except UnknownInvoice:
        return {"updated": False, "invoice_number": invoice_number, "reason": "No such invoice"}
    except PhoneNotTextable as refused:
        return {
            "updated": False,
            "invoice_number": invoice_number,
            "phone_status": refused.result.status,
            "reason": refused.result.reason,
        }
    masked = mask_phone(result.e164 or new_raw)  # what the ledger stored as phone_masked
    log.info("phone of %s changed to %s by %s", invoice_number, masked, edited_by)
    return {
        "updated": True,
        "invoice_number": invoice_number,
        "phone_status": result.status,
        "phone_masked": masked,
        "reason": "",
    }


def preview(
    ledger: Ledger,
    prices: PriceTable,
    settings: Settings,
    numbers: Sequence[str],
    request_id: str,
    requested_by: str,
    template: str | None = None,
    now: datetime | None = None,
    channels: Sequence[str] = (SMS,),
) -> SendAllPreview:
    """The "Send All" summary for the selected invoices by each of ``channels``
    (``courier.screens``): the ledger's rows and the settings the sender would use."""
    email = email_options(settings, prices) if EMAIL in channels else None
    return preview_send_all(
        ledger.send_all_candidates(list(dict.fromkeys(numbers))),
        ledger.message_keys(),
        prices,
        request_id=request_id,
        requested_by=requested_by,
        now=now or now_utc(),
        template=template,
        opted_out=ledger.opted_out(),
        hours=settings.hours,
        language=settings.sms_language,
        budget=settings.run_budget,
        channels=channels,
        email=email,
        bounced=ledger.bounced_addresses() if email is not None else (),
        email_hours=settings.email_hours,
    )


def _merge(total: dict[str, Any], part: dict[str, Any]) -> None:
    for key, value in part.items():
        if key == "charged":
            total["charged"] = str(Decimal(total.get("charged", "0")) + Decimal(str(value)))
        elif key == "held":
            total.setdefault("held", {}).update(value)
        elif key == "not_sendable":
            total.setdefault("not_sendable", []).extend(value)
        elif isinstance(value, int):
            total[key] = total.get(key, 0) + value
        else:
            total[key] = value


def send_sms(
    services: Services,
    numbers: Sequence[str],
    request_id: str,
    requested_by: str,
    run_id: str | None,
    template: str | None = None,
    batch_size: int | None = None,
    channels: Sequence[str] = (SMS,),
) -> dict[str, Any]:
    """Send the buyers of ``numbers`` their invoice now by each of ``channels`` (SMS by
    default; ``email``, or both): one new, charged message each with a fresh link.

    ``request_id`` identifies the press: the same id again sends nothing new. Large
    selections go in batches (each uploads its documents, then sends); the run budget is
    checked once against the whole selection first, so batching cannot exceed it.
    Returns outcome counts (an e-mail's prefixed ``email_``), ``charged`` (exact, as
    text), ``held`` (invoice -> reason), ``already_requested`` (sent earlier by this same
    request: nothing new) and ``not_sendable`` (no address or no stored document).
    """
    unique = list(dict.fromkeys(numbers))
    size = batch_size or services.settings.batch_size
    if len(unique) > size:
        _, quoted = jobs.plan_manual(
            services, unique, request_id, requested_by, template=template, channels=channels
        )
        refused = over_budget(quoted, services.settings.run_budget)
        if refused:
            return {"refused": refused, "charged": "0"}
    keys = services.ledger.message_keys(unique)
    by_this_request = (keys["purpose"] == manual_purpose(request_id)) & keys["channel"].isin(
        list(channels)
    )
    requested = set(keys.loc[by_this_request, "invoice_number"]) & set(unique)
    total: dict[str, Any] = {"charged": "0", "held": {}, "not_sendable": []}
    for batch in jobs.chunked(unique, size):
        part = jobs.send_manual(
            services, batch, request_id, requested_by, run_id, template=template, channels=channels
        )
        _merge(total, part)
        if part.get("refused"):
            break
    # Invoices this request had already sent (a double click): not "not sendable".
    total["already_requested"] = len(requested)
    total["not_sendable"] = [n for n in total["not_sendable"] if n not in requested]
    return total
