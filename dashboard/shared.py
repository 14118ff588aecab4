"""What the dashboard's tabs share: whether (and with what) sending works here, the
session's dialog and notice, and the action flows — one at a time per process."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st

from courier.channels import SMS
from courier.messages import PriceTable, load_price_table
from courier.settings import Settings, load_settings

BUSY = "A run is writing the ledger right now; try again in a moment."
#: How long a press of the page waits for a run's write to the ledger before saying BUSY.
LEDGER_WAIT_S = 5.0
#: One action flow at a time in this dashboard process. A second press while the first
#: press's flow runs starts a new script run in a new thread (Streamlit's fast reruns) while
#: the first thread is still inside its flow, and two people may press at once; the flows
#: share the process's PDF render pool and ledger. Queued, the second press finds the
#: first one's work done (the same request id sends nothing new).
ONE_ACTION_AT_A_TIME = threading.Lock()


# --------------------------------------------------------------------------- set-up


@dataclass(frozen=True)
class Sending:
    """What sending needs (the full settings and the price table), or why it cannot."""

    settings: Settings | None
    prices: PriceTable | None
    problem: str = ""

    @property
    def ready(self) -> bool:
        return self.settings is not None and self.prices is not None

    @property
    def email_enabled(self) -> bool:
        """A mail relay is configured (``COURIER_SMTP_HOST``)."""
        return self.settings is not None and self.settings.email_enabled

    @property
    def currency(self) -> str:
        return self.prices.currency if self.prices is not None else ""


def sending_setup() -> Sending:
    try:
        settings = load_settings()
        prices = load_price_table(settings.pricing_path)
    except Exception as error:  # settings or pricing file unusable: the page still reads
        return Sending(None, None, f"Sending is not configured here: {error}")
    return Sending(settings, prices)


def session() -> Any:
    return st.session_state


def new_request_id() -> str:
    return uuid.uuid4().hex


def close_dialog() -> None:
    session()["dialog"] = None


def notice(kind: str, text: str) -> None:
    session()["notice"] = (kind, text)


def show_notice() -> None:
    shown = session().pop("notice", None)
    if shown is None:
        return
    kind, text = shown
    {"success": st.success, "warning": st.warning, "error": st.error}.get(kind, st.info)(text)


# --------------------------------------------------------------------------- flows


def flow_edit_phone(invoice_number: str, new_raw: str, edited_by: str) -> dict[str, Any]:
    from flows.actions import edit_phone  # Prefect loads only when an action runs

    with ONE_ACTION_AT_A_TIME:
        result: dict[str, Any] = edit_phone(
            invoice_number=invoice_number, new_raw=new_raw, edited_by=edited_by
        )
    return result


def flow_send_sms(
    numbers: list[str],
    request_id: str,
    requested_by: str,
    template: str | None,
    channels: Sequence[str] = (SMS,),
) -> dict[str, Any]:
    from flows.actions import send_sms

    with ONE_ACTION_AT_A_TIME:
        result: dict[str, Any] = send_sms(
            numbers=numbers,
            request_id=request_id,
            requested_by=requested_by,
            template=template,
            channels=list(channels),
        )
    return result
