"""The channels a message goes by, behind one small interface the outbox's sender uses.

A channel is an adapter (the SMS gateway, the mail relay) plus what the sender must know
about it: how to hand one intent over, and whether the provider can be *asked* later if
it took a message. Twilio can (its message list, searched by number, day and text), so
an SMS whose fate is unclear is looked up. SMTP cannot, so an e-mail is marked
``sending`` in the outbox before it is handed over, and one left in that state (or cut
off after its DATA) is ``unknown`` for a person, never sent blindly again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from courier.adapters.docstore import StoredFiles
from courier.adapters.email import EmailTransport
from courier.adapters.sms import SmsGateway
from courier.email_messages import (
    DEFAULT_MAX_ATTACHMENT_BYTES,
    EmailContent,
    build_email,
    invoice_attachments,
)
from courier.ledger import now_utc
from courier.planning import Intent

SMS = "sms"
EMAIL = "email"


@dataclass(frozen=True)
class HandedOver:
    """The provider's identity of the message (Twilio's SID, the e-mail's Message-ID)
    and the status it reported."""

    sid: str
    status: str


class Channel(Protocol):
    name: str
    #: Whether ``find_sent`` can tell if the provider took a message.
    can_look_up: bool

    async def send(self, intent: Intent) -> HandedOver: ...

    async def find_sent(self, intent: Intent, day: date) -> HandedOver | None: ...


class SmsChannel:
    name = SMS
    can_look_up = True

    def __init__(self, gateway: SmsGateway) -> None:
        self._gateway = gateway

    async def send(self, intent: Intent) -> HandedOver:
        message = await self._gateway.send(_number(intent), intent.body)
        return HandedOver(message.sid, message.status)

    async def find_sent(self, intent: Intent, day: date) -> HandedOver | None:
        found = await self._gateway.find_sent(_number(intent), day, intent.body)
        return None if found is None else HandedOver(found.sid, found.status)


class EmailChannel:
    """Builds the intent's message (its stored parts, the PDF read back from the document
    store) and hands it to the relay."""

    name = EMAIL
    can_look_up = False

    def __init__(
        self,
        transport: EmailTransport,
        files: StoredFiles,
        sender: str,
        max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
        reply_to: str | None = None,
    ) -> None:
        self._transport = transport
        self._files = files
        self._sender = sender
        self._max_attachment_bytes = max_attachment_bytes
        self._reply_to = reply_to

    async def send(self, intent: Intent) -> HandedOver:
        pdf = await self._files.fetch(intent.attachment_url) if intent.attachment_url else None
        message = build_email(
            EmailContent(intent.subject or "", intent.body, intent.body_html or ""),
            sender=intent.from_address or self._sender,
            to=intent.to_address or "",
            cc=intent.cc_address,
            message_id=intent.message_id or "",
            date=now_utc(),
            attachments=invoice_attachments(
                intent.invoice_number, pdf, max_bytes=self._max_attachment_bytes
            ),
            reply_to=self._reply_to,
        )
        sent = await self._transport.send(message)
        return HandedOver(sent.message_id, "sent")

    async def find_sent(self, intent: Intent, day: date) -> HandedOver | None:
        raise NotImplementedError("SMTP cannot be asked whether it took a message")


def _number(intent: Intent) -> str:
    if not intent.to_e164:
        raise ValueError(f"{intent.idempotency_key}: an SMS intent without a number")
    return intent.to_e164
