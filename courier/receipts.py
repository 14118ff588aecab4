"""Delivery receipts and opt-outs pushed by the gateway (Twilio's webhooks).

``POST /twilio/status``  — status callbacks: queued → sent → delivered / undelivered / failed,
                           with the provider's error code and, when known, its price.
``POST /twilio/inbound`` — messages buyers send back: STOP (and Twilio's other opt-out words)
                           adds the number to ``opt_outs``; START removes it.

Every request must carry a valid ``X-Twilio-Signature`` (HMAC-SHA1 of the public URL plus the
sorted form parameters, keyed by the auth token); anything else is answered 403 and ignored.
Callbacks can be lost, so ``courier.jobs.poll_receipts`` polls as a fallback.

``POST /email/inbound``  — mail that comes back (a bounce, ETDA's stamped invoice) as the raw
                           message, from a mail provider's inbound route, with
                           ``Authorization: Bearer <COURIER_INBOUND_EMAIL_TOKEN>``; only
                           served when that token is set (``courier.inbound_mail``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from courier.adapters.errors import AdapterError
from courier.adapters.sms import SentMessage, SmsGateway
from courier.inbound_mail import MAX_INBOUND_BYTES, InboundMailError, read_inbound
from courier.ledger import Ledger
from courier.phones import mask_phone

log = logging.getLogger(__name__)

STATUS_PATH = "/twilio/status"
INBOUND_PATH = "/twilio/inbound"
EMAIL_INBOUND_PATH = "/email/inbound"

#: Twilio's default opt-out and opt-in keywords (case-insensitive, whole message).
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's request signature: base64(HMAC-SHA1(token, url + name1 + value1 + ...))."""
    payload = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signature_valid(auth_token: str, url: str, params: Mapping[str, str], given: str) -> bool:
    return hmac.compare_digest(twilio_signature(auth_token, url, params), given or "")


def create_receipts_app(
    ledger: Ledger,
    auth_token: str,
    public_base_url: str,
    on_write: Callable[[], None] | None = None,
    inbound_email_token: str = "",
    timestamp_address: str = "csemail@etax.teda.th",
) -> Starlette:
    """The webhook app; ``public_base_url`` is what the gateway calls (signatures cover it).
    ``on_write`` is called after each write to the ledger (e.g. a
    :class:`courier.snapshot.ThrottledPublisher`'s ``wrote``, so the dashboard shows it)."""
    base = public_base_url.rstrip("/")
    wrote = on_write or (lambda: None)

    async def verified_form(request: Request, path: str) -> dict[str, str] | None:
        form = {k: str(v) for k, v in (await request.form()).items()}
        given = request.headers.get("X-Twilio-Signature", "")
        if not signature_valid(auth_token, base + path, form, given):
            log.warning("rejected a webhook with a bad signature on %s", path)
            return None
        return form

    async def status(request: Request) -> Response:
        form = await verified_form(request, STATUS_PATH)
        if form is None:
            return PlainTextResponse("invalid signature", status_code=403)
        sid = form.get("MessageSid") or form.get("SmsSid") or ""
        state = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
        if not sid or not state:
            return PlainTextResponse("MessageSid and MessageStatus are required", 400)
        price = _decimal(form.get("Price"))
        known = ledger.record_delivery(sid, state, form.get("ErrorCode") or None, price, "callback")
        if known:
            wrote()
        # 200 even for an unknown SID: retrying would not make it known.
        return PlainTextResponse("ok" if known else "unknown message")

    async def inbound(request: Request) -> Response:
        form = await verified_form(request, INBOUND_PATH)
        if form is None:
            return PlainTextResponse("invalid signature", status_code=403)
        sender = form.get("From", "")
        word = form.get("Body", "").strip().upper()
        if sender and word in OPT_OUT_WORDS:
            ledger.add_opt_out(sender, "inbound_stop")
            wrote()
            log.info("opt-out from %s", mask_phone(sender))
        elif sender and word in OPT_IN_WORDS:
            ledger.remove_opt_out(sender)
            wrote()
            log.info("opt-in from %s", mask_phone(sender))
        return Response("<Response/>", media_type="application/xml")

    async def email_inbound(request: Request) -> Response:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), inbound_email_token.encode()):
            log.warning("rejected inbound mail with a bad token")
            return PlainTextResponse("invalid token", status_code=403)
        declared = int(request.headers.get("Content-Length") or 0)
        if declared > MAX_INBOUND_BYTES:
            return PlainTextResponse("message too large", status_code=413)
        raw = await request.body()
        try:
            mail = read_inbound(raw, timestamp_address)
        except InboundMailError as error:
            return PlainTextResponse(str(error), status_code=400)
        result = ledger.record_inbound(mail)
        if not result.duplicate:
            wrote()
        log.info("inbound mail: %s for %s", result.kind, result.invoice_number or "no invoice")
        return JSONResponse(result.as_dict())

    routes = [
        Route(STATUS_PATH, status, methods=["POST"]),
        Route(INBOUND_PATH, inbound, methods=["POST"]),
    ]
    if inbound_email_token:
        routes.append(Route(EMAIL_INBOUND_PATH, email_inbound, methods=["POST"]))
    return Starlette(routes=routes)


def _decimal(value: str | None) -> Decimal | None:
    if not value:
        return None
    try:
        return abs(Decimal(value))
    except InvalidOperation:
        return None


async def poll_for_receipts(
    gateway: SmsGateway,
    ledger: Ledger,
    older_than_s: float,
    concurrency: int = 8,
    limit: int = 1000,
) -> dict[str, int]:
    """Fetch, by SID, messages still without a final status or a provider price (callbacks
    get lost, and Twilio's callbacks never carry the price), and record what they say."""
    sids = ledger.awaiting_receipts(older_than_s, limit)
    slots = asyncio.Semaphore(concurrency)

    async def one(sid: str) -> SentMessage | None:
        async with slots:
            try:
                return await gateway.fetch(sid)
            except AdapterError as error:
                log.info("receipt poll for %s failed: %s", sid, error)
                return None

    messages = await asyncio.gather(*(one(sid) for sid in sids))
    counts: Counter[str] = Counter()
    with ledger.holding():
        for message in messages:
            if message is None:
                counts["poll_failed"] += 1
                continue
            ledger.record_delivery(
                message.sid, message.status, message.error_code, message.price, "poll"
            )
            counts[message.status] += 1
    return dict(counts)
