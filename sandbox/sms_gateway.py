"""Sandbox SMS gateway speaking Twilio's Messages API (REST API 2010-04-01).

Contract: ``shared/twilio/twilio_api_v2010.json`` (``/2010-04-01/Accounts/{AccountSid}/
Messages.json`` and ``.../Messages/{Sid}.json``). Requests are form-urlencoded with HTTP Basic
auth ``AccountSid:AuthToken``; errors are ``{"code", "message", "more_info", "status"}``.

This stand-in deliberately shares no code with the product: it validates numbers, counts
segments and prices messages on its own, so a product bug cannot hide behind the same bug here.

Lifecycle (computed lazily from the clock whenever a message is read, so a restart keeps it):
``queued`` at creation, ``sent`` after ``delivery_delay_s / 2`` (the price appears then), and
the final status after ``delivery_delay_s``: ``delivered``, or, for a late failure,
``undelivered`` (was sent, is charged) or ``failed`` (never sent: no ``sent`` stage, price
stays null, as Twilio does not charge failed messages) with ``error_code``/``error_message``
(30003 Unreachable destination handset, 30005 Unknown destination handset, 30006 Landline or
unreachable carrier, ...). A message's delay, fate and price are fixed when it is accepted.

Status callbacks: a create with ``StatusCallback`` gets a POST to that URL for ``sent`` and
for the final status (none for ``queued``; a ``failed`` message gets only ``failed``), with
Twilio's form (MessageSid, SmsSid, MessageStatus, SmsStatus, To, From, AccountSid, ApiVersion,
and ErrorCode when undelivered/failed) and the headers ``X-Twilio-Signature`` (see
``twilio_signature``) and ``I-Twilio-Idempotency-Token`` (same for every attempt at one
event). A transport error (refused, reset, timeout) is retried ``callback_retries`` times with
doubling delays; an HTTP answer of any status is final. Every attempt is recorded (``GET
/_sandbox/callbacks``). Progress is kept in SQLite: events still due when the gateway stops
are sent after it starts again (at least once, so a receiver may see an event twice).

Opt-out: ``POST /_sandbox/inbound`` (form ``From=<E.164>&Body=STOP``; also STOPALL, UNSUBSCRIBE,
CANCEL, END, QUIT; START, YES, UNSTOP opt back in; whole body, any case) plays a handset
replying. Afterwards a create to that number answers 400, code 21610 "Attempt to send to
unsubscribed recipient", whatever the sender (the sandbox keeps one account-wide list).
``GET /_sandbox/opt-outs`` lists the opted-out numbers, ``GET /_sandbox/inbound`` every reply.

Knobs (``POST /_sandbox/config`` with a JSON object, ``GET`` to read):

- ``latency_ms``: sleep before answering any API call.
- ``fail_rate``: fraction (0..1) of create calls answered 500/503 and NOT accepted.
- ``lost_response_rate``: fraction (0..1) of create calls that ARE accepted and recorded but
  answered 504 after ``lost_response_delay_ms`` (a client timeout shorter than that delay sees
  a timeout): the ambiguous case where a blind retry double-sends.
- ``rate_limit_per_s``: token bucket over create calls, taken on arrival (before
  ``latency_ms``): capacity ``max(1, rate)`` tokens, starting full, refilled continuously at
  ``rate`` per second; a call finding no whole token is answered 429, code 20429, with
  ``Retry-After`` (whole seconds, >= 1) and takes nothing. So any client whose calls arrive at
  most ``rate`` per 1-second window ``[t, t+1)`` is never limited, and one pacing evenly at
  ``rate`` absorbs up to ``(capacity - 1) / rate`` s of jitter; bursts of up to ``capacity``
  pass. ``null`` = unlimited; 0 = refuse every create. Changing it refills the bucket.
- ``delivery_delay_s``: time from creation to the final status (default 0.2).
- ``late_failure_rate``: fraction (0..1) of accepted messages that end ``undelivered`` or
  ``failed`` with a code drawn from ``late_failure_codes`` (default [30003, 30005, 30006]).
- ``late_failed_share``: fraction (0..1) of those late failures that end ``failed`` rather
  than ``undelivered`` (default 0).
- ``undelivered_rate``: older knob, fraction (0..1) of accepted messages that end
  ``undelivered`` with 30003 (drawn before ``late_failure_rate``).
- ``price_multiplier``: the sandbox's own price table times this (default 1), in force when a
  message is accepted: makes the provider's price differ from the agreed one.
- ``callback_retries`` (default 3), ``callback_retry_delay_ms`` (first retry delay, doubling;
  default 200), ``callback_timeout_s`` (default 5): status callback delivery.
- ``seed``: seed of the randomness behind the rates (reseeds when set). Request faults
  (fail/lost) and message fates (late failures, codes) draw from separate generators, so with
  a seed the n-th accepted message has the same fate whatever the fault knobs did.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import email.utils
import hashlib
import hmac
import json
import logging
import random
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import phonenumbers
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox._common import (
    Knobs,
    TokenBucket,
    config_endpoint,
    health_response,
    init_sqlite,
    int_knob,
    int_list_knob,
    number_knob,
    sleep_ms,
    sqlite_connection,
)

log = logging.getLogger("sandbox.sms")

API_VERSION = "2010-04-01"
ERRORS_DOC = "https://www.twilio.com/docs/errors/{code}"
MAX_BODY_CHARS = 1600

# --- segments ---------------------------------------------------------------------------

#: GSM 03.38 default alphabet (the escape character 0x1B itself is not sendable).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: GSM 03.38 extension table: each costs two septets (escape + char).
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


@dataclass(frozen=True)
class Segments:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    count: int


def _pack(costs: list[int], single: int, part: int) -> int:
    """Parts needed when a unit group (escape pair, surrogate pair) never straddles parts."""
    if sum(costs) <= single:
        return 1
    parts, used = 1, 0
    for cost in costs:
        if used + cost > part:
            parts += 1
            used = 0
        used += cost
    return parts


def count_segments(body: str) -> Segments:
    """Segments of ``body``: GSM-7 if every char is in the GSM 03.38 tables, else UCS-2."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in body):
        costs = [2 if ch in GSM7_EXTENSION else 1 for ch in body]
        return Segments("GSM-7", sum(costs), _pack(costs, GSM7_SINGLE, GSM7_PART))
    costs = [2 if ord(ch) > 0xFFFF else 1 for ch in body]
    return Segments("UCS-2", sum(costs), _pack(costs, UCS2_SINGLE, UCS2_PART))


# --- pricing ----------------------------------------------------------------------------

#: USD charged per outbound segment, by destination country (ISO 3166-1 alpha-2).
PRICE_PER_SEGMENT_USD: dict[str, Decimal] = {
    "TH": Decimal("0.03000"),
    "SA": Decimal("0.04000"),
    "EG": Decimal("0.05000"),
    "US": Decimal("0.00830"),
}
#: Any destination not in the table.
DEFAULT_PRICE_PER_SEGMENT_USD = Decimal("0.10000")


def price_for(country: str | None, segments: int, multiplier: float | Decimal = 1) -> str:
    """Twilio-style price string: negative, five decimals, e.g. ``"-0.06000"``.

    ``multiplier`` scales the table price (``price_multiplier`` knob); zero gives "0.00000".
    """
    per_segment = PRICE_PER_SEGMENT_USD.get(country or "", DEFAULT_PRICE_PER_SEGMENT_USD)
    factor = multiplier if isinstance(multiplier, Decimal) else Decimal(str(multiplier))
    amount = (per_segment * segments * factor).quantize(Decimal("0.00001"))
    return f"{-amount}" if amount else f"{amount.copy_abs()}"


# --- webhook signatures -----------------------------------------------------------------


def twilio_signature(
    auth_token: str, url: str, params: Mapping[str, str] | Iterable[tuple[str, str]] = ()
) -> str:
    """``X-Twilio-Signature`` of a webhook POST, computed as Twilio does.

    The full URL exactly as requested (scheme, host, port if any, path, query string), then
    each POST parameter's name immediately followed by its value, in order of name (a name
    given twice: its distinct values in order), no separators; HMAC-SHA1 of that UTF-8 string
    keyed with the account's auth token; base64 of the 20-byte digest.
    """
    pairs = params.items() if isinstance(params, Mapping) else params
    grouped: dict[str, set[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, set()).add(value)
    signed = "".join(name + value for name in sorted(grouped) for value in sorted(grouped[name]))
    data = url + signed
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def validate_twilio_signature(
    auth_token: str,
    url: str,
    params: Mapping[str, str] | Iterable[tuple[str, str]],
    signature: str,
) -> bool:
    """Constant-time check of ``signature`` against ``twilio_signature`` (for test receivers)."""
    return hmac.compare_digest(twilio_signature(auth_token, url, params), signature)


# --- numbers ----------------------------------------------------------------------------

NumberType = phonenumbers.PhoneNumberType
#: Valid numbers that cannot receive SMS.
NOT_SMS_CAPABLE = frozenset(
    {
        NumberType.FIXED_LINE,
        NumberType.TOLL_FREE,
        NumberType.PREMIUM_RATE,
        NumberType.SHARED_COST,
        NumberType.UAN,
        NumberType.VOICEMAIL,
    }
)


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def twilio_error(
    status: int, code: int, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {
        "code": code,
        "message": message,
        "more_info": ERRORS_DOC.format(code=code),
        "status": status,
    }
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def normalize_to(raw: str) -> tuple[str, str | None]:
    """``(E.164, region)`` of a 'To' number, or ``ApiError`` 21211 / 21614."""
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise ApiError(400, 21211, f"The 'To' number {raw} is not a valid phone number.")
    if phonenumbers.number_type(parsed) in NOT_SMS_CAPABLE:
        raise ApiError(400, 21614, "'To' number is not a valid mobile number")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return e164, phonenumbers.region_code_for_number(parsed)


def normalize_number(raw: str) -> str:
    """E.164 of any valid number (an inbound 'From'), or ``ApiError`` 21212."""
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise ApiError(400, 21212, f"The 'From' number {raw} is not a valid phone number.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# --- time -------------------------------------------------------------------------------


def rfc2822(epoch: float) -> str:
    return email.utils.format_datetime(datetime.fromtimestamp(int(epoch), tz=UTC))


def _day_start(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def parse_date_sent(value: str) -> tuple[float, float, bool]:
    """A DateSent filter value -> ``(start, end, date_only)`` epoch range (end exclusive).

    Accepts ``YYYY-MM-DD`` (a GMT day), an ISO 8601 datetime, or an RFC 2822 datetime.
    """
    text = value.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        return _day_start(day), _day_start(day + timedelta(days=1)), True
    moment: datetime | None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            moment = None
    if moment is None:
        raise ApiError(400, 20001, f"Invalid DateSent filter: {value!r} (use YYYY-MM-DD)")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    ts = moment.timestamp()
    return ts, ts, False


# --- the gateway ------------------------------------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sid TEXT NOT NULL UNIQUE,
    account_sid TEXT NOT NULL,
    to_number TEXT NOT NULL,
    from_number TEXT NOT NULL,
    body TEXT NOT NULL,
    num_segments INTEGER NOT NULL,
    encoding TEXT NOT NULL,
    country TEXT,
    price TEXT NOT NULL,
    status_callback TEXT,
    created_at REAL NOT NULL,
    sent_at REAL NOT NULL,
    final_at REAL NOT NULL,
    final_status TEXT NOT NULL,
    final_error_code INTEGER,
    callbacks_done INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_to ON messages (to_number, created_at);
CREATE TABLE IF NOT EXISTS callbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sid TEXT NOT NULL,
    url TEXT NOT NULL,
    message_status TEXT NOT NULL,
    http_status INTEGER,
    error TEXT,
    at REAL NOT NULL,
    error_code INTEGER,
    attempt INTEGER NOT NULL DEFAULT 1,
    signature TEXT,
    idempotency_token TEXT,
    params TEXT
);
CREATE TABLE IF NOT EXISTS opt_outs (
    number TEXT PRIMARY KEY,
    keyword TEXT NOT NULL,
    sender TEXT,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS inbound (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    from_number TEXT NOT NULL,
    to_number TEXT,
    body TEXT NOT NULL,
    action TEXT NOT NULL,
    at REAL NOT NULL
);
"""

#: Columns added after the first release: ``(table, column, declaration)``. A state dir from
#: before gets them on start; its old messages count as having had all their callbacks.
MIGRATIONS = (
    ("messages", "callbacks_done", "INTEGER NOT NULL DEFAULT 2"),
    ("callbacks", "error_code", "INTEGER"),
    ("callbacks", "attempt", "INTEGER NOT NULL DEFAULT 1"),
    ("callbacks", "signature", "TEXT"),
    ("callbacks", "idempotency_token", "TEXT"),
    ("callbacks", "params", "TEXT"),
)

#: Delivery error codes the sandbox can report (Twilio's wording).
ERROR_MESSAGES = {
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}
DEFAULT_LATE_FAILURE_CODES = [30003, 30005, 30006]

#: Twilio's default opt-out and opt-in keywords (the whole body, any case).
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})

KNOB_SPEC = {
    "latency_ms": (number_knob(0), 0.0),
    "fail_rate": (number_knob(0, 1), 0.0),
    "lost_response_rate": (number_knob(0, 1), 0.0),
    "lost_response_delay_ms": (number_knob(0), 0.0),
    "rate_limit_per_s": (number_knob(0, nullable=True), None),
    "delivery_delay_s": (number_knob(0), 0.2),
    "undelivered_rate": (number_knob(0, 1), 0.0),
    "late_failure_rate": (number_knob(0, 1), 0.0),
    "late_failure_codes": (int_list_knob(ERROR_MESSAGES), DEFAULT_LATE_FAILURE_CODES),
    "late_failed_share": (number_knob(0, 1), 0.0),
    "price_multiplier": (number_knob(0), 1.0),
    "callback_retries": (int_knob(0), 3),
    "callback_retry_delay_ms": (number_knob(0), 200.0),
    "callback_timeout_s": (number_knob(0.001), 5.0),
    "seed": (int_knob(nullable=True), None),
}

STAT_KEYS = (
    "create_calls",
    "accepted",
    "unauthorized",
    "rate_limited",
    "failed_injected",
    "lost_responses",
    "rejected_invalid",
    "rejected_opted_out",
    "callback_attempts",
)


class SmsGateway:
    """State and behaviour of one sandbox gateway (the ASGI app is a thin shell over it)."""

    def __init__(
        self,
        state_dir: Path,
        account_sid: str,
        auth_token: str,
        knobs: Mapping[str, Any] | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.state_dir / "sms_gateway.sqlite3"
        init_sqlite(self.db_path, SCHEMA)
        _migrate(self.db_path)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.knobs = Knobs(KNOB_SPEC, knobs)
        self._lock = threading.Lock()
        self._seed_generators()
        self._bucket = self._new_bucket()
        self.stats: dict[str, int] = dict.fromkeys(STAT_KEYS, 0)
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None

    # -- knobs and randomness

    def _seed_generators(self) -> None:
        seed = self.knobs["seed"]
        self._rng = random.Random(seed)  # request faults: fail_rate, lost_response_rate
        # message fates; a str seed is hashed deterministically (sha512), unlike None
        self._fate_rng = random.Random(None if seed is None else f"fate:{seed}")

    def _new_bucket(self) -> TokenBucket | None:
        limit = self.knobs["rate_limit_per_s"]
        return None if limit is None else TokenBucket(limit)

    def configure(self, changes: Mapping[str, Any]) -> None:
        self.knobs.update(changes)
        with self._lock:
            if "seed" in changes:
                self._seed_generators()
            if "rate_limit_per_s" in changes:
                self._bucket = self._new_bucket()

    def chance(self, rate: float, rng: random.Random | None = None) -> bool:
        if rate <= 0:
            return False
        if rate >= 1:
            return True
        with self._lock:
            return (rng or self._rng).random() < rate

    def reset(self) -> None:
        with sqlite_connection(self.db_path) as conn:
            for table in ("messages", "callbacks", "opt_outs", "inbound"):
                conn.execute(f"DELETE FROM {table}")
        self.knobs.reset()
        with self._lock:
            self._seed_generators()
            self._bucket = self._new_bucket()
            self.stats = dict.fromkeys(STAT_KEYS, 0)

    # -- auth and limits

    def authorized(self, request: Request, account_sid: str) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return bool(
            sep
            and secrets.compare_digest(user, self.account_sid)
            and secrets.compare_digest(password, self.auth_token)
            and secrets.compare_digest(account_sid, self.account_sid)
        )

    def retry_after(self) -> float | None:
        """None if a create call may proceed now (taking a token); else seconds to wait."""
        bucket = self._bucket
        return None if bucket is None else bucket.take()

    def count(self, key: str, by: int = 1) -> None:
        with self._lock:
            self.stats[key] += by

    # -- opt-outs

    def inbound(self, params: Mapping[str, str]) -> dict[str, Any]:
        """A handset's reply: STOP-like keywords opt its number out, START-like back in."""
        raw_from = params.get("From", "").strip()
        body = params.get("Body", "")
        if not raw_from:
            raise ApiError(400, 21603, "A 'From' phone number is required.")
        number = normalize_number(raw_from)
        sender = params.get("To", "").strip() or None
        keyword = body.strip().upper()
        action = (
            "opt_out"
            if keyword in OPT_OUT_KEYWORDS
            else "opt_in"
            if keyword in OPT_IN_KEYWORDS
            else "none"
        )
        now = time.time()
        with sqlite_connection(self.db_path) as conn:
            conn.execute(
                "INSERT INTO inbound (from_number, to_number, body, action, at)"
                " VALUES (?, ?, ?, ?, ?)",
                (number, sender, body, action, now),
            )
            if action == "opt_out":
                conn.execute(
                    "INSERT INTO opt_outs (number, keyword, sender, at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (number) DO UPDATE SET"
                    " keyword = excluded.keyword, sender = excluded.sender, at = excluded.at",
                    (number, keyword, sender, now),
                )
            elif action == "opt_in":
                conn.execute("DELETE FROM opt_outs WHERE number = ?", (number,))
            opted_out = self._opted_out(conn, number)
        return {"from": number, "body": body, "action": action, "opted_out": opted_out}

    @staticmethod
    def _opted_out(conn: sqlite3.Connection, number: str) -> bool:
        row = conn.execute("SELECT 1 FROM opt_outs WHERE number = ?", (number,)).fetchone()
        return row is not None

    def opt_outs(self) -> list[dict[str, Any]]:
        with sqlite_connection(self.db_path) as conn:
            rows = conn.execute("SELECT * FROM opt_outs ORDER BY at, number").fetchall()
        return [dict(row) for row in rows]

    def inbound_log(self) -> list[dict[str, Any]]:
        with sqlite_connection(self.db_path) as conn:
            rows = conn.execute("SELECT * FROM inbound ORDER BY id").fetchall()
        return [dict(row) for row in rows]

    # -- messages

    def _fate(self) -> tuple[str, int | None]:
        """``(final_status, error_code)`` of a newly accepted message (seeded draws)."""
        if self.chance(self.knobs["undelivered_rate"], self._fate_rng):
            return "undelivered", 30003
        if not self.chance(self.knobs["late_failure_rate"], self._fate_rng):
            return "delivered", None
        with self._lock:
            code = self._fate_rng.choice(self.knobs["late_failure_codes"])
        failed = self.chance(self.knobs["late_failed_share"], self._fate_rng)
        return ("failed" if failed else "undelivered"), code

    def create(self, params: Mapping[str, str]) -> dict[str, Any]:
        to_raw = params.get("To", "").strip()
        from_raw = params.get("From", "").strip()
        body = params.get("Body", "")
        callback = params.get("StatusCallback", "").strip() or None
        if not to_raw:
            raise ApiError(400, 21604, "A 'To' phone number is required.")
        if not from_raw:
            raise ApiError(400, 21603, "A 'From' phone number is required.")
        if not body:
            raise ApiError(400, 21602, "Message body is required.")
        to, country = normalize_to(to_raw)
        if len(body) > MAX_BODY_CHARS:
            raise ApiError(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        if callback is not None:
            parts = urlsplit(callback)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ApiError(400, 21609, f"Invalid StatusCallback url: {callback}")
        segments = count_segments(body)
        sid = "SM" + uuid.uuid4().hex
        with sqlite_connection(self.db_path) as conn:
            if self._opted_out(conn, to):
                self.count("rejected_opted_out")
                raise ApiError(400, 21610, "Attempt to send to unsubscribed recipient")
            created = time.time()
            delay = float(self.knobs["delivery_delay_s"])
            final_status, error_code = self._fate()
            # a failed message is never sent: it goes from queued straight to failed
            sent_at = created + delay if final_status == "failed" else created + delay / 2
            price = price_for(country, segments.count, self.knobs["price_multiplier"])
            conn.execute(
                "INSERT INTO messages (sid, account_sid, to_number, from_number, body,"
                " num_segments, encoding, country, price, status_callback, created_at,"
                " sent_at, final_at, final_status, final_error_code, callbacks_done)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                (
                    sid,
                    self.account_sid,
                    to,
                    from_raw,
                    body,
                    segments.count,
                    segments.encoding,
                    country,
                    price,
                    callback,
                    created,
                    sent_at,
                    created + delay,
                    final_status,
                    error_code,
                ),
            )
            row = conn.execute("SELECT * FROM messages WHERE sid = ?", (sid,)).fetchone()
        self.count("accepted")
        if callback is not None:
            self._schedule_callbacks(row)
        return self.render(row, created)

    def get(self, sid: str) -> dict[str, Any] | None:
        with sqlite_connection(self.db_path) as conn:
            row = conn.execute("SELECT * FROM messages WHERE sid = ?", (sid,)).fetchone()
        return None if row is None else self.render(row)

    def all_messages(self) -> list[dict[str, Any]]:
        with sqlite_connection(self.db_path) as conn:
            rows = conn.execute("SELECT * FROM messages ORDER BY seq").fetchall()
        now = time.time()
        return [{**self.render(row, now), "sandbox": {"encoding": row["encoding"]}} for row in rows]

    def render(self, row: Any, now: float | None = None) -> dict[str, Any]:
        """The Message resource as Twilio returns it, with the status as of ``now``."""
        now = time.time() if now is None else now
        status, updated, error_code = "queued", row["created_at"], None
        if now >= row["final_at"]:
            status, updated = row["final_status"], row["final_at"]
            error_code = row["final_error_code"]
        elif now >= row["sent_at"]:
            status, updated = "sent", row["sent_at"]
        charged = status not in ("queued", "failed")  # Twilio does not charge failed ones
        sid = row["sid"]
        base = f"/{API_VERSION}/Accounts/{row['account_sid']}/Messages/{sid}"
        return {
            "account_sid": row["account_sid"],
            "api_version": API_VERSION,
            "body": row["body"],
            "date_created": rfc2822(row["created_at"]),
            "date_sent": rfc2822(row["created_at"]),
            "date_updated": rfc2822(updated),
            "direction": "outbound-api",
            "error_code": error_code,
            "error_message": ERROR_MESSAGES.get(error_code) if error_code else None,
            "from": row["from_number"],
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": str(row["num_segments"]),
            "price": row["price"] if charged else None,
            "price_unit": "USD",
            "sid": sid,
            "status": status,
            "subresource_uris": {"media": f"{base}/Media.json"},
            "to": row["to_number"],
            "uri": f"{base}.json",
        }

    def list_page(self, account_sid: str, query: Mapping[str, str]) -> dict[str, Any]:
        where: list[str] = ["account_sid = ?"]
        args: list[Any] = [account_sid]
        echo: list[tuple[str, str]] = []
        if query.get("To"):
            to = query["To"]
            with contextlib.suppress(ApiError):
                to, _ = normalize_to(to)
            where.append("to_number = ?")
            args.append(to)
            echo.append(("To", query["To"]))
        if query.get("From"):
            where.append("from_number = ?")
            args.append(query["From"])
            echo.append(("From", query["From"]))
        for name in ("DateSent", "DateSent<", "DateSent>"):
            if not query.get(name):
                continue
            start, end, date_only = parse_date_sent(query[name])
            if name == "DateSent":
                if date_only:
                    where.append("created_at >= ? AND created_at < ?")
                    args.extend([start, end])
                else:
                    day = datetime.fromtimestamp(start, tz=UTC).date()
                    where.append("created_at >= ? AND created_at < ?")
                    args.extend([_day_start(day), _day_start(day + timedelta(days=1))])
            elif name == "DateSent<":  # on or before
                where.append("created_at < ?" if date_only else "created_at <= ?")
                args.append(end if date_only else start)
            else:  # on or after
                where.append("created_at >= ?")
                args.append(start)
            echo.append((name, query[name]))

        page_size = _int_param(query, "PageSize", 50, 1, 1000)
        page = _int_param(query, "Page", 0, 0, 10**9)
        token = query.get("PageToken", "")
        sql_where = " AND ".join(where)
        has_next = False
        with sqlite_connection(self.db_path) as conn:
            if token:
                if len(token) < 3 or token[:2] not in ("PA", "PB"):
                    raise ApiError(400, 20001, f"Invalid PageToken: {token!r}")
                anchor = conn.execute(
                    "SELECT seq FROM messages WHERE sid = ?", (token[2:],)
                ).fetchone()
                if anchor is None:
                    raise ApiError(400, 20001, f"Invalid PageToken: {token!r}")
                if token.startswith("PA"):
                    rows: list[Any] = conn.execute(
                        f"SELECT * FROM messages WHERE {sql_where} AND seq < ?"
                        " ORDER BY seq DESC LIMIT ?",
                        [*args, anchor["seq"], page_size + 1],
                    ).fetchall()
                else:
                    before = conn.execute(
                        f"SELECT * FROM messages WHERE {sql_where} AND seq > ?"
                        " ORDER BY seq ASC LIMIT ?",
                        [*args, anchor["seq"], page_size],
                    ).fetchall()
                    rows = list(reversed(before))
                    has_next = True  # the anchor itself comes after this page
            else:
                rows = conn.execute(
                    f"SELECT * FROM messages WHERE {sql_where} ORDER BY seq DESC LIMIT ? OFFSET ?",
                    [*args, page_size + 1, page * page_size],
                ).fetchall()
        has_next = has_next or len(rows) > page_size
        rows = rows[:page_size]
        now = time.time()
        messages = [self.render(row, now) for row in rows]

        path = f"/{API_VERSION}/Accounts/{account_sid}/Messages.json"

        def page_uri(number: int, page_token: str | None = None) -> str:
            params = [*echo, ("PageSize", str(page_size)), ("Page", str(number))]
            if page_token:
                params.append(("PageToken", page_token))
            return f"{path}?{urlencode(params)}"

        start = page * page_size
        return {
            "end": start + max(len(messages) - 1, 0),
            "first_page_uri": page_uri(0),
            "next_page_uri": (
                page_uri(page + 1, "PA" + messages[-1]["sid"]) if has_next and messages else None
            ),
            "page": page,
            "page_size": page_size,
            "previous_page_uri": (
                page_uri(page - 1, "PB" + messages[0]["sid"]) if page > 0 and messages else None
            ),
            "start": start,
            "uri": page_uri(page, token or None),
            "messages": messages,
        }

    # -- status callbacks

    @staticmethod
    def callback_stages(row: Any) -> list[tuple[float, str, int | None]]:
        """``(when, MessageStatus, ErrorCode)`` of each status callback a message gets."""
        final = (row["final_at"], row["final_status"], row["final_error_code"])
        if row["final_status"] == "failed":
            return [final]
        return [(row["sent_at"], "sent", None), final]

    def callback_form(self, row: Any, status: str, error_code: int | None) -> dict[str, str]:
        form = {
            "MessageSid": row["sid"],
            "SmsSid": row["sid"],
            "MessageStatus": status,
            "SmsStatus": status,
            "To": row["to_number"],
            "From": row["from_number"],
            "AccountSid": row["account_sid"],
            "ApiVersion": API_VERSION,
        }
        if error_code:
            form["ErrorCode"] = str(error_code)
        return form

    def _schedule_callbacks(self, row: Any) -> None:
        try:
            task = asyncio.get_running_loop().create_task(self._run_callbacks(row))
        except RuntimeError:  # no loop (called outside the app): resumed on the next start
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def resume_callbacks(self) -> int:
        """Schedule the callbacks still due (after a restart); return how many messages."""
        with sqlite_connection(self.db_path) as conn:
            rows = conn.execute(
                "SELECT * FROM messages WHERE status_callback IS NOT NULL"
                " AND callbacks_done < (CASE final_status WHEN 'failed' THEN 1 ELSE 2 END)"
                " ORDER BY seq"
            ).fetchall()
        for row in rows:
            self._schedule_callbacks(row)
        return len(rows)

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(headers={"User-Agent": "TwilioProxy/1.1"})
        return self._http

    async def _run_callbacks(self, row: Any) -> None:
        url = row["status_callback"]
        for index, (when, status, error_code) in enumerate(self.callback_stages(row)):
            if index < row["callbacks_done"]:
                continue
            await asyncio.sleep(max(0.0, when - time.time()))
            await self._deliver_callback(row, url, status, error_code)
            with sqlite_connection(self.db_path) as conn:
                conn.execute(
                    "UPDATE messages SET callbacks_done = ? WHERE sid = ?", (index + 1, row["sid"])
                )

    async def _deliver_callback(
        self, row: Any, url: str, status: str, error_code: int | None
    ) -> None:
        """POST one status event, retrying transport errors; record every attempt."""
        form = self.callback_form(row, status, error_code)
        signature = twilio_signature(self.auth_token, url, form)
        token = hashlib.sha256(f"{row['sid']}:{status}".encode()).hexdigest()[:32]
        headers = {"X-Twilio-Signature": signature, "I-Twilio-Idempotency-Token": token}
        attempts = 1 + int(self.knobs["callback_retries"])
        delay = float(self.knobs["callback_retry_delay_ms"]) / 1000.0
        for attempt in range(1, attempts + 1):
            http_status: int | None = None
            error: str | None = None
            self.count("callback_attempts")
            try:
                response = await self._client().post(
                    url,
                    data=form,
                    headers=headers,
                    timeout=float(self.knobs["callback_timeout_s"]),
                )
                http_status = response.status_code
            except httpx.TransportError as exc:
                error = f"{type(exc).__name__}: {exc}"
            except (httpx.HTTPError, httpx.InvalidURL) as exc:  # retrying will not help
                error = f"{type(exc).__name__}: {exc}"
                attempts = attempt
            with sqlite_connection(self.db_path) as conn:
                conn.execute(
                    "INSERT INTO callbacks (sid, url, message_status, error_code, attempt,"
                    " http_status, error, signature, idempotency_token, params, at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        row["sid"],
                        url,
                        status,
                        error_code,
                        attempt,
                        http_status,
                        error,
                        signature,
                        token,
                        json.dumps(form),
                        time.time(),
                    ),
                )
            if error is None or attempt >= attempts:
                return
            await asyncio.sleep(delay * 2 ** (attempt - 1))

    def callbacks(self) -> list[dict[str, Any]]:
        with sqlite_connection(self.db_path) as conn:
            rows = conn.execute("SELECT * FROM callbacks ORDER BY id").fetchall()
        out = []
        for row in rows:
            item = dict(row)
            item["params"] = json.loads(item["params"]) if item["params"] else None
            out.append(item)
        return out

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def _migrate(db_path: Path) -> None:
    """Add the columns of ``MIGRATIONS`` that a state dir from before lacks."""
    with sqlite_connection(db_path) as conn:
        for table, column, declaration in MIGRATIONS:
            present = {info["name"] for info in conn.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


def _int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, 20001, f"Invalid {name}: {raw!r}") from None
    if not low <= value <= high:
        raise ApiError(400, 20001, f"{name} must be between {low} and {high}")
    return value


def _form_params(raw: bytes, content_type: str) -> dict[str, str]:
    """First value of each form field; a non-form body carries no fields (as at Twilio)."""
    if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, 20001, "Request body is not valid UTF-8") from None
    params: dict[str, str] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        params.setdefault(key, value)
    return params


def create_sms_app(
    state_dir: Path,
    account_sid: str,
    auth_token: str,
    knobs: dict[str, Any] | None = None,
) -> Starlette:
    """ASGI app of a Twilio-compatible SMS gateway keeping its state in ``state_dir``."""
    gateway = SmsGateway(state_dir, account_sid, auth_token, knobs)

    def unauthorized() -> JSONResponse:
        return twilio_error(
            401,
            20003,
            "Authenticate",
            headers={"WWW-Authenticate": 'Basic realm="Twilio API"'},
        )

    async def create_message(request: Request) -> Response:
        account = request.path_params["account_sid"]
        gateway.count("create_calls")
        if not gateway.authorized(request, account):
            gateway.count("unauthorized")
            return unauthorized()
        wait = gateway.retry_after()  # the rate limit counts calls as they arrive
        await sleep_ms(gateway.knobs["latency_ms"])
        if wait is not None:
            gateway.count("rate_limited")
            return twilio_error(
                429,
                20429,
                "Too Many Requests",
                {"Retry-After": TokenBucket.retry_after_header(wait)},
            )
        if gateway.chance(gateway.knobs["fail_rate"]):
            gateway.count("failed_injected")
            if gateway.chance(0.5):
                return twilio_error(503, 20503, "Service Unavailable")
            return twilio_error(500, 20500, "Internal Server Error")
        try:
            params = _form_params(await request.body(), request.headers.get("content-type", ""))
            message = gateway.create(params)
        except ApiError as exc:
            gateway.count("rejected_invalid")
            return twilio_error(exc.status, exc.code, exc.message)
        if gateway.chance(gateway.knobs["lost_response_rate"]):
            gateway.count("lost_responses")
            await sleep_ms(gateway.knobs["lost_response_delay_ms"])
            return twilio_error(504, 20504, "Gateway Timeout")
        return JSONResponse(message, status_code=201)

    async def list_messages(request: Request) -> Response:
        account = request.path_params["account_sid"]
        if not gateway.authorized(request, account):
            return unauthorized()
        await sleep_ms(gateway.knobs["latency_ms"])
        try:
            page = gateway.list_page(account, request.query_params)
        except ApiError as exc:
            return twilio_error(exc.status, exc.code, exc.message)
        return JSONResponse(page)

    async def messages(request: Request) -> Response:
        if request.method == "POST":
            return await create_message(request)
        return await list_messages(request)

    async def fetch_message(request: Request) -> Response:
        account = request.path_params["account_sid"]
        if not gateway.authorized(request, account):
            return unauthorized()
        await sleep_ms(gateway.knobs["latency_ms"])
        message = gateway.get(request.path_params["sid"])
        if message is None or message["account_sid"] != account:
            return twilio_error(
                404, 20404, f"The requested resource {request.url.path} was not found"
            )
        return JSONResponse(message)

    async def admin_messages(request: Request) -> Response:
        return JSONResponse({"messages": gateway.all_messages()})

    async def admin_callbacks(request: Request) -> Response:
        return JSONResponse({"callbacks": gateway.callbacks()})

    async def admin_inbound(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"inbound": gateway.inbound_log()})
        try:
            params = _form_params(await request.body(), request.headers.get("content-type", ""))
            result = gateway.inbound(params)
        except ApiError as exc:
            return twilio_error(exc.status, exc.code, exc.message)
        return JSONResponse(result)

    async def admin_opt_outs(request: Request) -> Response:
        return JSONResponse({"opt_outs": gateway.opt_outs()})

    async def admin_stats(request: Request) -> Response:
        return JSONResponse(dict(gateway.stats))

    async def admin_config(request: Request) -> Response:
        return await config_endpoint(request, gateway.knobs, gateway.configure)

    async def admin_reset(request: Request) -> Response:
        gateway.reset()
        return JSONResponse({"status": "reset"})

    async def health(request: Request) -> Response:
        return health_response("sms_gateway")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        resumed = gateway.resume_callbacks()
        if resumed:
            log.info("resuming status callbacks of %d message(s)", resumed)
        yield
        await gateway.close()

    api = f"/{API_VERSION}/Accounts/{{account_sid}}"
    app = Starlette(
        routes=[
            Route(f"{api}/Messages.json", messages, methods=["GET", "POST"]),
            Route(f"{api}/Messages/{{sid}}.json", fetch_message, methods=["GET"]),
            Route("/_sandbox/health", health, methods=["GET"]),
            Route("/_sandbox/config", admin_config, methods=["GET", "POST"]),
            Route("/_sandbox/messages", admin_messages, methods=["GET"]),
            Route("/_sandbox/callbacks", admin_callbacks, methods=["GET"]),
            Route("/_sandbox/inbound", admin_inbound, methods=["GET", "POST"]),
            Route("/_sandbox/opt-outs", admin_opt_outs, methods=["GET"]),
            Route("/_sandbox/stats", admin_stats, methods=["GET"]),
            Route("/_sandbox/reset", admin_reset, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    return app
