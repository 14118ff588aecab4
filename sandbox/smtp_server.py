"""Sandbox SMTP server (a stand-in mail relay) that keeps every message it received.

SMTP side (``aiosmtpd``): accepts mail from anyone for anyone on loopback, optional
``AUTH PLAIN/LOGIN`` with a fixed username and password, and answers DATA as the knobs say:

* ``reply``: ``ok`` (250, the message is kept), ``4xx`` (451, a transient refusal: nothing
  kept), ``5xx`` (554, permanent: nothing kept) or ``drop_after_data`` — the message is
  *kept* (the relay took it) and the connection is cut before the reply, the ambiguous case
  a client can never tell from a lost message;
* ``reply_times``: how many DATA commands get that reply before ``ok`` again (null: all).
* ``latency_ms``: a pause before each DATA reply.

The mail world beyond the relay (for every message *kept*, so also after
``drop_after_data``: the relay took it and delivers it, the client just was not told):

* ``bounce`` (default ``[]``): recipients that "do not exist" — addresses (case-insensitive
  exact match) or ``"@domain"`` for a whole domain, matched against the envelope
  recipients. Each one bouncing gets its own delivery status notification (RFC 3464
  ``multipart/report; report-type=delivery-status``, ``Status: 5.1.1``) addressed to the
  envelope sender; none when the sender is empty (a bounce is never bounced).
* ``timestamp_address`` (default ``csemail@etax.teda.th``; null: off): a stand-in for
  ETDA's e-Tax time-stamp mailbox. A message with it among its recipients (envelope, To
  or Cc) and at least one ``application/pdf`` part gets a "stamped" reply to its From
  (Cc its To) carrying the same PDFs back; without a PDF there is no reply, and the kept
  message says so (``"timestamp": "no_pdf"``). See ``build_timestamp_reply``.
* ``inbound_url`` (default null) / ``inbound_token`` (default null): where the generated
  mail goes — POSTed as raw ``message/rfc822`` (``Authorization: Bearer <token>`` when
  set), like a mail provider's inbound-mail webhook handing the seller's incoming mail to
  Courier. Posted from a background task (the SMTP reply is not delayed), up to
  ``INBOUND_POST_ATTEMPTS`` tries on transport errors and 5xx answers, never on 4xx.

HTTP side (Starlette), for tests and the demo: ``GET /_sandbox/messages`` (envelope, the
headers that matter, the parsed subject, part types and attachment names of each message
kept, in order; plus ``bounced`` and ``timestamp``), ``GET /_sandbox/messages/{n}/raw``
(the bytes as received), ``GET /_sandbox/outbound`` (the generated mail, same summary
shape plus ``kind`` ``bounce`` | ``timestamp``, ``source`` (the kept message's ``n``),
``bounced_recipient``, and delivery state ``delivered`` / ``pending`` / ``attempts`` /
``http_status`` / ``error`` / ``inbound_url``), ``GET /_sandbox/outbound/{n}/raw``,
``POST /_sandbox/outbound/{n}/redeliver`` (post it to ``inbound_url`` again and answer
with the entry once done: for testing idempotent receivers), ``GET|POST /_sandbox/config``
(knobs), ``POST /_sandbox/reset`` (knobs back, mailbox and outbound emptied, pending
posts cancelled), ``GET /_sandbox/health``. Messages kept are also appended to
``messages.jsonl`` in the state directory (generated mail is in memory only). Nothing
here imports ``courier``.
"""

from __future__ import annotations

import asyncio
import email
import json
import logging
import re
import threading
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message, MIMEPart
from email.utils import format_datetime, getaddresses, make_msgid
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox._common import (
    KnobError,
    Knobs,
    KnobValidator,
    config_endpoint,
    health_response,
    int_knob,
    number_knob,
)

log = logging.getLogger("sandbox.smtp")

HOSTNAME = "sandbox-smtp.local"
MAILER_DAEMON = f"Mail Delivery System <mailer-daemon@{HOSTNAME}>"
DEFAULT_TIMESTAMP_ADDRESS = "csemail@etax.teda.th"

REPLIES = ("ok", "4xx", "5xx", "drop_after_data")
CODES = {"4xx": "451 4.3.0 Sandbox: try again later", "5xx": "554 5.7.1 Sandbox: refused"}

#: Posting generated mail to ``inbound_url``: per-try timeout, tries, first retry pause
#: (doubling). A couple of retries only: the receiver under test should not be flooded.
INBOUND_POST_TIMEOUT_S = 10.0
INBOUND_POST_ATTEMPTS = 3
INBOUND_RETRY_DELAY_S = 0.1

#: Generated mail goes out with CRLF line ends, as mail does on the wire.
WIRE = policy.SMTP


def _reply_knob(name: str, value: Any) -> Any:
    if value not in REPLIES:
        raise KnobError(f"knob '{name}' must be one of {', '.join(REPLIES)}")
    return value


def _bounce_knob(name: str, value: Any) -> Any:
    """A list of addresses or ``@domain`` patterns (kept lower-cased: matching ignores case)."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise KnobError(f"knob '{name}' must be a list of addresses or '@domain' patterns")
    patterns = [item.strip().lower() for item in value]
    for item in patterns:
        if not re.fullmatch(r"[^@\s]*@[^@\s]+", item):  # an empty local part: "@domain"
            raise KnobError(f"knob '{name}': {item!r} is neither an address nor '@domain'")
    return patterns


def _address_knob(name: str, value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+", value):
        raise KnobError(f"knob '{name}' must be an e-mail address or null")
    return value


def _url_knob(name: str, value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise KnobError(f"knob '{name}' must be an http(s) URL or null")
    return value


def _token_knob(name: str, value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise KnobError(f"knob '{name}' must be a non-empty string without spaces, or null")
    return value


KNOBS: dict[str, tuple[KnobValidator, Any]] = {
    "reply": (_reply_knob, "ok"),
    "reply_times": (int_knob(minimum=0, nullable=True), None),
    "latency_ms": (number_knob(minimum=0, maximum=60_000), 0.0),
    "bounce": (_bounce_knob, []),
    "timestamp_address": (_address_knob, DEFAULT_TIMESTAMP_ADDRESS),
    "inbound_url": (_url_knob, None),
    "inbound_token": (_token_knob, None),
}


@dataclass
class Mailbox:
    """What the server received (in memory, and appended to ``state_dir/messages.jsonl``)."""

    state_dir: Path | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def keep(
        self, envelope: Envelope, content: bytes, extra: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        summary = summarise(envelope.mail_from or "", list(envelope.rcpt_tos), content)
        summary.update(extra or {})
        with self.lock:
            summary["n"] = len(self.messages)
            self.messages.append(summary)
            self.raw.append(content)
            if self.state_dir is not None:
                self.state_dir.mkdir(parents=True, exist_ok=True)
                with (self.state_dir / "messages.jsonl").open("a", encoding="utf-8") as out:
                    out.write(json.dumps(summary, ensure_ascii=False) + "\n")
        return summary

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()
            self.raw.clear()


@dataclass
class Outbox:
    """Mail the sandbox itself generated (bounces, time-stamp replies), in memory only."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outgoing: Outgoing, source: int) -> dict[str, Any]:
        entry = summarise(outgoing.mail_from, outgoing.rcpt_tos, outgoing.content)
        entry.update(
            kind=outgoing.kind,
            source=source,
            bounced_recipient=outgoing.bounced_recipient,
            delivered=False,
            pending=False,
            attempts=0,
            http_status=None,
            error=None,
            inbound_url=None,
        )
        with self.lock:
            entry["n"] = len(self.entries)
            self.entries.append(entry)
            self.raw.append(outgoing.content)
        return entry

    def get(self, n: int) -> tuple[dict[str, Any], bytes] | None:
        with self.lock:
            if not 0 <= n < len(self.entries):
                return None
            return self.entries[n], self.raw[n]

    def update(self, entry: dict[str, Any], **changes: Any) -> dict[str, Any]:
        """Change one entry in place (harmless if a reset dropped it meanwhile)."""
        with self.lock:
            entry.update(changes)
            return dict(entry)

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(entry) for entry in self.entries]

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
            self.raw.clear()


@dataclass(frozen=True)
class Outgoing:
    """One generated message: its envelope and bytes."""

    kind: str  # "bounce" | "timestamp"
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    bounced_recipient: str | None = None


def _leaf_parts(part: Message) -> Iterator[Message]:
    """Leaf parts in order; a ``message/delivery-status`` counts as one leaf, although the
    ``email`` package models it as a list of header blocks."""
    if not part.is_multipart() or part.get_content_type() == "message/delivery-status":
        yield part
        return
    for sub in part.get_payload():
        if isinstance(sub, Message):
            yield from _leaf_parts(sub)


def summarise(mail_from: str, rcpt_tos: list[str], content: bytes) -> dict[str, Any]:
    parsed = email.message_from_bytes(content, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    parts = [part.get_content_type() for part in _leaf_parts(parsed)]
    attachments = [
        {"filename": part.get_filename(), "type": part.get_content_type(),
         "bytes": len(part.get_payload(decode=True) or b"")}
        for part in parsed.iter_attachments()
    ]  # fmt: skip
    return {
        "mail_from": mail_from,
        "rcpt_tos": rcpt_tos,
        "from": str(parsed.get("From", "")),
        "to": str(parsed.get("To", "")),
        "cc": str(parsed.get("Cc", "")),
        "subject": str(parsed.get("Subject", "")),
        "message_id": str(parsed.get("Message-ID", "")),
        "parts": parts,
        "attachments": attachments,
        "size": len(content),
    }


def bounces_for(rcpt_tos: list[str], patterns: list[str]) -> list[str]:
    """The envelope recipients that match a ``bounce`` pattern (address or ``@domain``)."""
    matched = []
    for rcpt in rcpt_tos:
        address = rcpt.strip().lower()
        domain = "@" + address.rpartition("@")[2]
        if address in patterns or domain in patterns:
            matched.append(rcpt)
    return matched


def _header_block(raw: bytes) -> str:
    """The original header section, as received (up to the first empty line)."""
    end = re.search(rb"\r?\n\r?\n", raw)
    headers = raw[: end.start()] if end else raw
    return headers.decode("utf-8", errors="replace").replace("\r\n", "\n") + "\n"


def _status_block(fields: Mapping[str, str]) -> MIMEPart:
    block = MIMEPart(policy=policy.default)
    for name, value in fields.items():
        block[name] = value
    return block


def build_bounce(raw: bytes, mail_from: str, recipient: str, when: datetime) -> bytes:
    """An RFC 3464 delivery status notification: ``recipient`` of the message ``raw`` (whose
    envelope sender was ``mail_from``, and which arrived ``when``) does not exist.

    Parts: a human explanation, the machine-readable ``message/delivery-status`` (one
    per-message block, one per-recipient block) and the original's headers.
    """
    # MIMEPart, not EmailMessage: the parts are built by hand, and typeshed wants parent
    # and parts of one class.
    dsn = MIMEPart(policy=policy.default)
    dsn["From"] = MAILER_DAEMON
    dsn["To"] = mail_from
    dsn["Subject"] = "Undelivered Mail Returned to Sender"
    dsn["Message-ID"] = make_msgid(domain=HOSTNAME)
    dsn["Date"] = format_datetime(when)
    dsn["Auto-Submitted"] = "auto-replied"
    dsn["MIME-Version"] = "1.0"
    dsn["Content-Type"] = "multipart/report; report-type=delivery-status"

    diagnostic = f"550 5.1.1 <{recipient}>: mailbox unavailable"
    explanation = MIMEPart(policy=policy.default)
    explanation.set_content(
        f"This is the mail system at host {HOSTNAME}.\n\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients.\n\n"
        f"<{recipient}>: host {HOSTNAME} said:\n    {diagnostic}\n"
    )
    # The email package models message/delivery-status as a list of header blocks and
    # writes them separated by empty lines, which is exactly the RFC 3464 layout.
    status = MIMEPart(policy=policy.default)
    status["Content-Type"] = "message/delivery-status"
    status.attach(
        _status_block({"Reporting-MTA": f"dns; {HOSTNAME}", "Arrival-Date": format_datetime(when)})
    )
    status.attach(
        _status_block(
            {
                "Final-Recipient": f"rfc822; {recipient}",
                "Action": "failed",
                "Status": "5.1.1",
                "Diagnostic-Code": f"smtp; {diagnostic}",
            }
        )
    )
    headers = MIMEPart(policy=policy.default)
    headers.set_content(_header_block(raw), subtype="rfc822-headers")
    for part in (explanation, status, headers):
        dsn.attach(part)
    return dsn.as_bytes(policy=WIRE)


def pdf_attachments(parsed: EmailMessage) -> list[tuple[str, bytes]]:
    """``(filename, bytes)`` of each ``application/pdf`` part, in order."""
    pdfs = []
    for index, part in enumerate(_leaf_parts(parsed), start=1):
        if part.get_content_type() == "application/pdf":
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                pdfs.append((part.get_filename() or f"attachment-{index}.pdf", data))
    return pdfs


def build_timestamp_reply(
    original: EmailMessage, pdfs: list[tuple[str, bytes]], address: str, now: datetime
) -> bytes:
    """The reply ETDA's e-Tax time-stamp mailbox sends: to the original From, Cc its To,
    same Subject, threaded on its Message-ID, with each PDF attached back.

    The real service returns the PDFs with a time-stamp signature added; the sandbox cannot
    sign, so the bytes come back unchanged and ``X-Sandbox-Timestamp`` says when it
    "stamped" them. Receivers must not treat these PDFs as signed.
    """
    stamped_at = now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    reply = EmailMessage(policy=policy.default)
    reply["From"] = address
    reply["To"] = str(original.get("From", ""))
    if original.get("To"):
        reply["Cc"] = str(original["To"])
    reply["Subject"] = str(original.get("Subject", ""))
    original_id = str(original.get("Message-ID", "")).strip()
    if original_id:
        reply["In-Reply-To"] = original_id
        reply["References"] = original_id
    reply["Message-ID"] = make_msgid(domain=address.rpartition("@")[2])
    reply["Date"] = format_datetime(now)
    reply["X-Sandbox-Timestamp"] = stamped_at
    reply.set_content(
        "Sandbox stand-in for the e-Tax time-stamp service.\n\n"
        f"Time-stamped at {stamped_at}: {', '.join(name for name, _ in pdfs)}.\n"
        "The sandbox cannot sign: the attached PDF files are returned unchanged.\n"
    )
    for filename, data in pdfs:
        reply.add_attachment(data, maintype="application", subtype="pdf", filename=filename)
    return reply.as_bytes(policy=WIRE)


def _addresses(*values: str) -> list[str]:
    return [address for _, address in getaddresses(list(values)) if address]


class SandboxHandler:
    def __init__(self, mailbox: Mailbox, knobs: Knobs, outbox: Outbox | None = None) -> None:
        self.mailbox = mailbox
        self.knobs = knobs
        self.outbox = outbox if outbox is not None else Outbox()
        self._replies_left: int | None = None
        self._lock = threading.Lock()
        self._posts: set[asyncio.Task[Any]] = set()

    def configure(self, changes: Mapping[str, Any]) -> None:
        checked = self.knobs.update(changes)
        with self._lock:
            if "reply" in checked or "reply_times" in checked:
                self._replies_left = self.knobs["reply_times"]

    def reset(self) -> None:
        """Knobs back, outbound emptied, and posts still under way cancelled (they may run on
        the SMTP server's loop, another thread than the caller's)."""
        self.knobs.reset()
        with self._lock:
            self._replies_left = None
            posts = list(self._posts)
        for task in posts:
            task.get_loop().call_soon_threadsafe(task.cancel)
        self.outbox.clear()

    def _reply_now(self) -> str:
        reply = str(self.knobs["reply"])
        if reply == "ok":
            return reply
        with self._lock:
            if self._replies_left is None:
                return reply
            if self._replies_left <= 0:
                return "ok"
            self._replies_left -= 1
            return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        latency = float(self.knobs["latency_ms"])
        if latency:
            await asyncio.sleep(latency / 1000)
        reply = self._reply_now()
        if reply in CODES:
            return CODES[reply]
        content = envelope.original_content or b""
        outgoing, extra = self.generate(envelope.mail_from or "", list(envelope.rcpt_tos), content)
        kept = self.mailbox.keep(envelope, content, extra)
        for item in outgoing:
            entry = self.outbox.add(item, source=kept["n"])
            self._post_in_background(entry, item.content)
        transport = server.transport
        if reply == "drop_after_data" and isinstance(transport, asyncio.Transport):
            transport.abort()  # taken, but the client never hears so
        return "250 2.0.0 Sandbox: queued"

    def generate(
        self, mail_from: str, rcpt_tos: list[str], content: bytes
    ) -> tuple[list[Outgoing], dict[str, Any]]:
        """The mail the world sends back for one message kept, and what to record about it
        on the kept message (``bounced``, ``timestamp``)."""
        now = datetime.now(UTC)
        outgoing: list[Outgoing] = []
        bounced = bounces_for(rcpt_tos, list(self.knobs["bounce"]))
        if mail_from not in ("", "<>"):  # a null sender (itself a bounce) is never bounced
            for recipient in bounced:
                dsn = build_bounce(content, mail_from, recipient, now)
                # A DSN's envelope sender is null (RFC 3461), so that it is never bounced.
                outgoing.append(Outgoing("bounce", "", [mail_from], dsn, recipient))
        timestamp: str | None = None
        address = self.knobs["timestamp_address"]
        parsed = email.message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        recipients = _addresses(*rcpt_tos, str(parsed.get("To", "")), str(parsed.get("Cc", "")))
        if address and address.lower() in {r.lower() for r in recipients}:
            pdfs = pdf_attachments(parsed)
            if pdfs:
                reply = build_timestamp_reply(parsed, pdfs, address, now)
                to = _addresses(str(parsed.get("From", "")), str(parsed.get("To", "")))
                to = [r for r in to if r.lower() != address.lower()]  # not back to itself
                outgoing.append(Outgoing("timestamp", address, to, reply))
                timestamp = "replied"
            else:
                timestamp = "no_pdf"
                log.info("time-stamp mailbox got a message without a PDF: no reply")
        return outgoing, {"bounced": bounced, "timestamp": timestamp}

    def _post_in_background(self, entry: dict[str, Any], content: bytes) -> None:
        if not self.knobs["inbound_url"]:
            return
        self.outbox.update(entry, pending=True)
        task = asyncio.get_running_loop().create_task(self.deliver(entry, content))
        with self._lock:
            self._posts.add(task)

        def forget(done: asyncio.Task[Any]) -> None:
            with self._lock:
                self._posts.discard(done)

        task.add_done_callback(forget)

    async def deliver(self, entry: dict[str, Any], content: bytes) -> dict[str, Any]:
        """POST one generated message to ``inbound_url``; record the outcome on its entry.

        Retries transport errors and 5xx answers (a receiver restarting), not 4xx (it
        refused this request: the same one again will not do better).
        """
        url = self.knobs["inbound_url"]
        if not url:
            return self.outbox.update(entry, pending=False, error="no inbound_url set")
        headers = {"Content-Type": "message/rfc822", "User-Agent": "sandbox-smtp"}
        token = self.knobs["inbound_token"]
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.outbox.update(entry, pending=True, inbound_url=url)
        http_status: int | None = None
        error: str | None = None
        try:
            async with httpx.AsyncClient(timeout=INBOUND_POST_TIMEOUT_S) as client:
                for attempt in range(1, INBOUND_POST_ATTEMPTS + 1):
                    http_status, error, retry = await _post_once(client, url, content, headers)
                    with self.outbox.lock:
                        entry["attempts"] += 1
                    if not retry or attempt == INBOUND_POST_ATTEMPTS:
                        break
                    await asyncio.sleep(INBOUND_RETRY_DELAY_S * 2 ** (attempt - 1))
        except asyncio.CancelledError:
            http_status, error = None, "cancelled (sandbox reset or shutdown)"
            raise
        finally:  # also when cancelled by a reset: the entry must not stay "pending"
            delivered = error is None and http_status is not None
            if not delivered:
                log.warning("outbound #%s to %s not delivered: %s", entry["n"], url, error)
            result = self.outbox.update(
                entry, pending=False, delivered=delivered, http_status=http_status, error=error
            )
        return result


async def _post_once(
    client: httpx.AsyncClient, url: str, content: bytes, headers: Mapping[str, str]
) -> tuple[int | None, str | None, bool]:
    """One POST: ``(http_status, error or None, worth retrying)``."""
    try:
        response = await client.post(url, content=content, headers=headers)
    except httpx.TransportError as exc:
        return None, f"{type(exc).__name__}: {exc}", True
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # a bad URL stays bad
        return None, f"{type(exc).__name__}: {exc}", False
    if response.is_success:
        return response.status_code, None, False
    return response.status_code, f"HTTP {response.status_code}", response.status_code >= 500


class _Authenticator:
    def __init__(self, username: str, password: str) -> None:
        self.username = username.encode()
        self.password = password.encode()

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login == self.username
            and data.password == self.password
        )
        return AuthResult(success=ok, handled=False)


def make_smtp_factory(
    handler: SandboxHandler, username: str | None = None, password: str | None = None
) -> Any:
    """A protocol factory for ``loop.create_server`` (plain SMTP on loopback; with a
    username, AUTH is required and allowed without TLS, as it is local only)."""

    def factory() -> SMTP:
        if username:
            with warnings.catch_warnings():  # AUTH without TLS: loopback only, on purpose
                warnings.simplefilter("ignore", UserWarning)
                return SMTP(
                    handler,
                    authenticator=_Authenticator(username, password or ""),
                    auth_required=True,
                    auth_require_tls=False,
                    hostname=HOSTNAME,
                )
        return SMTP(handler, hostname=HOSTNAME)

    return factory


def create_smtp_inspection_app(handler: SandboxHandler) -> Starlette:
    mailbox = handler.mailbox
    outbox = handler.outbox

    async def messages(request: Request) -> Response:
        with mailbox.lock:
            return JSONResponse({"messages": list(mailbox.messages)})

    async def raw(request: Request) -> Response:
        n = int(request.path_params["n"])
        with mailbox.lock:
            if not 0 <= n < len(mailbox.raw):
                return JSONResponse({"error": "not_found"}, status_code=404)
            content = mailbox.raw[n]
        return Response(content, media_type="message/rfc822")

    async def outbound(request: Request) -> Response:
        return JSONResponse({"outbound": outbox.snapshot()})

    async def outbound_raw(request: Request) -> Response:
        found = outbox.get(int(request.path_params["n"]))
        if found is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        return Response(found[1], media_type="message/rfc822")

    async def redeliver(request: Request) -> Response:
        found = outbox.get(int(request.path_params["n"]))
        if found is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        if not handler.knobs["inbound_url"]:
            return JSONResponse(
                {"error": "no_inbound_url", "message": "set the 'inbound_url' knob first"},
                status_code=409,
            )
        return JSONResponse(await handler.deliver(*found))

    async def config(request: Request) -> Response:
        return await config_endpoint(request, handler.knobs, handler.configure)

    async def reset(request: Request) -> Response:
        handler.reset()
        mailbox.clear()
        return JSONResponse({"status": "reset"})

    async def health(request: Request) -> Response:
        return health_response("smtp")

    return Starlette(
        routes=[
            Route("/_sandbox/messages", messages, methods=["GET"]),
            Route("/_sandbox/messages/{n:int}/raw", raw, methods=["GET"]),
            Route("/_sandbox/outbound", outbound, methods=["GET"]),
            Route("/_sandbox/outbound/{n:int}/raw", outbound_raw, methods=["GET"]),
            Route("/_sandbox/outbound/{n:int}/redeliver", redeliver, methods=["POST"]),
            Route("/_sandbox/config", config, methods=["GET", "POST"]),
            Route("/_sandbox/reset", reset, methods=["POST"]),
            Route("/_sandbox/health", health, methods=["GET"]),
        ]
    )
