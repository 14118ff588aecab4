"""Mail that comes back, read (pure): a bounce (a delivery status notification, RFC 3464)
or ETDA's time-stamp service returning the stamped invoice.

Either arrives as the raw message (``message/rfc822``) — posted by the mail provider's
inbound route to the receipts receiver (``/email/inbound``), or piped to
``courier email inbound``. Both tie it to the e-mail it is about by our Message-ID: a
bounce quotes the original's headers, a stamped reply names it in ``In-Reply-To`` /
``References``. Parsing is the standard library's ``email`` package: no attachment is
executed or opened beyond hashing its bytes.
"""

from __future__ import annotations

import email
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Final, Literal

Kind = Literal["bounce", "timestamp", "other"]

#: The most of an inbound message read (a stamped invoice is one PDF; more is not ours).
MAX_INBOUND_BYTES: Final = 25 * 1024 * 1024
_MESSAGE_ID: Final = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True)
class BouncedRecipient:
    address: str
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # e.g. 5.1.1
    diagnostic: str


@dataclass(frozen=True)
class StampedFile:
    filename: str
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class InboundMail:
    message_id: str  # its own (or a digest of its bytes when it has none)
    kind: Kind
    answers: str | None  # the Message-ID of ours it is about
    sender: str
    subject: str
    size_bytes: int
    received_date: datetime | None  # its Date header
    recipients: tuple[BouncedRecipient, ...] = field(default_factory=tuple)
    files: tuple[StampedFile, ...] = field(default_factory=tuple)

    @property
    def failed_addresses(self) -> list[str]:
        """The addresses a permanent failure came back for (they get no more e-mail)."""
        return [r.address for r in self.recipients if r.action == "failed"]


class InboundMailError(ValueError):
    """Not a message Courier can read (too large, or not mail at all)."""


def read_inbound(raw: bytes, timestamp_address: str) -> InboundMail:
    """Classify and read one message. ``timestamp_address`` is ETDA's time-stamp mailbox
    (its replies come From it)."""
    if len(raw) > MAX_INBOUND_BYTES:
        raise InboundMailError(f"inbound message of {len(raw)} bytes is over the limit")
    message = email.message_from_bytes(raw, policy=policy.default)
    if not isinstance(message, EmailMessage) or not message.keys():
        raise InboundMailError("not an e-mail message (no headers)")
    own_id = _first_id(str(message.get("Message-ID", ""))) or (
        "<sha256:" + hashlib.sha256(raw).hexdigest() + ">"
    )
    sender = _address(str(message.get("From", "")))

    def mail(
        kind: Kind,
        answers: str | None,
        recipients: tuple[BouncedRecipient, ...] = (),
        files: tuple[StampedFile, ...] = (),
    ) -> InboundMail:
        return InboundMail(
            message_id=own_id,
            kind=kind,
            answers=answers,
            sender=sender,
            subject=" ".join(str(message.get("Subject", "")).split()),
            size_bytes=len(raw),
            received_date=_date(str(message.get("Date", ""))),
            recipients=recipients,
            files=files,
        )

    if _is_dsn(message):
        recipients, original = _delivery_status(message)
        return mail("bounce", original, recipients=recipients)
    answers = _first_id(str(message.get("In-Reply-To", ""))) or _last_id(
        str(message.get("References", ""))
    )
    if sender and sender == timestamp_address.strip().lower() and answers:
        files = tuple(
            StampedFile(
                part.get_filename() or "", hashlib.sha256(content).hexdigest(), len(content)
            )
            for part in message.iter_attachments()
            if (content := _payload(part)) is not None
        )
        return mail("timestamp", answers, files=files)
    return mail("other", answers)


def _is_dsn(message: EmailMessage) -> bool:
    return (
        message.get_content_type() == "multipart/report"
        and str(message.get_param("report-type", "")).lower() == "delivery-status"
    )


def _delivery_status(message: EmailMessage) -> tuple[tuple[BouncedRecipient, ...], str | None]:
    recipients: list[BouncedRecipient] = []
    original: str | None = None
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            blocks = part.get_payload()
            # The first block is about the message, each further one about one recipient.
            for block in blocks[1:] if isinstance(blocks, list) else []:
                recipient = _recipient(block) if isinstance(block, Message) else None
                if recipient is not None:
                    recipients.append(recipient)
        elif kind == "text/rfc822-headers" and original is None:
            text = _payload(part) or b""
            headers = HeaderParser().parsestr(text.decode("utf-8", "replace"))
            original = _first_id(str(headers.get("Message-ID", "")))
        elif kind == "message/rfc822" and original is None:
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                original = _first_id(str(inner[0].get("Message-ID", "")))
    return tuple(recipients), original


def _recipient(block: Message) -> BouncedRecipient | None:
    final = str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
    address = final.split(";", 1)[-1].strip().strip("<>").lower()
    if not address:
        return None
    return BouncedRecipient(
        address=address,
        action=str(block.get("Action", "")).strip().lower(),
        status=str(block.get("Status", "")).strip(),
        diagnostic=" ".join(str(block.get("Diagnostic-Code", "")).split())[:500],
    )


def _payload(part: Message) -> bytes | None:
    content = part.get_payload(decode=True)
    return content if isinstance(content, bytes) else None


def _address(header: str) -> str:
    pairs = getaddresses([header])
    return pairs[0][1].strip().lower() if pairs and pairs[0][1] else ""


def _first_id(text: str) -> str | None:
    found = _MESSAGE_ID.findall(text)
    return found[0] if found else None


def _last_id(text: str) -> str | None:
    found = _MESSAGE_ID.findall(text)
    return found[-1] if found else None


def _date(text: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else None
