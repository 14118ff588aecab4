"""Sandbox SMTP server (a stand-in mail relay) that keeps every message it received.

SMTP side (``aiosmtpd``): accepts mail from anyone for anyone on loopback, optional
``AUTH PLAIN/LOGIN`` with a fixed username and password, and answers DATA as the knobs say:

* ``reply``: ``ok`` (250, the message is kept), ``4xx`` (451, a transient refusal: nothing
  kept), ``5xx`` (554, permanent: nothing kept) or ``drop_after_data`` — the message is
  *kept* (the relay took it) and the connection is cut before the reply, the ambiguous case
  a client can never tell from a lost message;
* ``reply_times``: how many DATA commands get that reply before ``ok`` again (null: all).
* ``latency_ms``: a pause before each DATA reply.

HTTP side (Starlette), for tests and the demo: ``GET /_sandbox/messages`` (envelope, the
headers that matter, the parsed subject, part types and attachment names of each message
kept, in order), ``GET /_sandbox/messages/{n}/raw`` (the bytes as received),
``GET|POST /_sandbox/config`` (knobs), ``POST /_sandbox/reset`` (knobs back, mailbox
emptied), ``GET /_sandbox/health``. Messages are also appended to ``messages.jsonl`` in the
state directory. Nothing here imports ``courier``.
"""

from __future__ import annotations

import asyncio
import email
import json
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox._common import (
    KnobError,
    Knobs,
    config_endpoint,
    health_response,
    int_knob,
    number_knob,
)

REPLIES = ("ok", "4xx", "5xx", "drop_after_data")
CODES = {"4xx": "451 4.3.0 Sandbox: try again later", "5xx": "554 5.7.1 Sandbox: refused"}


def _reply_knob(name: str, value: Any) -> Any:
    if value not in REPLIES:
        raise KnobError(f"knob '{name}' must be one of {', '.join(REPLIES)}")
    return value


KNOBS = {
    "reply": (_reply_knob, "ok"),
    "reply_times": (int_knob(minimum=0, nullable=True), None),
    "latency_ms": (number_knob(minimum=0, maximum=60_000), 0.0),
}


@dataclass
class Mailbox:
    """What the server received (in memory, and appended to ``state_dir/messages.jsonl``)."""

    state_dir: Path | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def keep(self, envelope: Envelope, content: bytes) -> dict[str, Any]:
        summary = summarise(envelope.mail_from or "", list(envelope.rcpt_tos), content)
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


def summarise(mail_from: str, rcpt_tos: list[str], content: bytes) -> dict[str, Any]:
    parsed = email.message_from_bytes(content, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    parts = [part.get_content_type() for part in parsed.walk() if not part.is_multipart()]
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


class SandboxHandler:
    def __init__(self, mailbox: Mailbox, knobs: Knobs) -> None:
        self.mailbox = mailbox
        self.knobs = knobs
        self._replies_left: int | None = None
        self._lock = threading.Lock()

    def configure(self, changes: Mapping[str, Any]) -> None:
        checked = self.knobs.update(changes)
        with self._lock:
            if "reply" in checked or "reply_times" in checked:
                self._replies_left = self.knobs["reply_times"]

    def reset(self) -> None:
        self.knobs.reset()
        with self._lock:
            self._replies_left = None

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
        self.mailbox.keep(envelope, content)
        transport = server.transport
        if reply == "drop_after_data" and isinstance(transport, asyncio.Transport):
            transport.abort()  # taken, but the client never hears so
        return "250 2.0.0 Sandbox: queued"


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
                    hostname="sandbox-smtp.local",
                )
        return SMTP(handler, hostname="sandbox-smtp.local")

    return factory


def create_smtp_inspection_app(handler: SandboxHandler) -> Starlette:
    mailbox = handler.mailbox

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
            Route("/_sandbox/config", config, methods=["GET", "POST"]),
            Route("/_sandbox/reset", reset, methods=["POST"]),
            Route("/_sandbox/health", health, methods=["GET"]),
        ]
    )
