"""Sandbox invoice source (a stand-in ERP) serving a JSON Lines file over a paginated API.

``GET /api/v1/invoices?issued_after=<ISO 8601>&updated_after=<ISO 8601>&limit=<n>&cursor=<opaque>``
-> ``{"data": [...], "next_cursor": "<opaque>" | null}``.

Records are sorted by ``(issued_at as an instant, number)``; paging is by key (the cursor
carries the last record's key), so it stays stable when the file grows or is rewritten:
every record present for the whole walk is returned exactly once. ``issued_after`` is
strict (``issued_at > issued_after``). The file is re-read whenever its mtime, size or
inode changes; a line that is not a JSON object with ``number`` and a parseable,
offset-carrying ``issued_at`` is skipped and reported by ``GET /_sandbox/status``.

Payments: an optional JSON Lines file of payment events (``payments_path``), one
``{"number", "paid_at", "amount_paid", "payment_status"}`` per line - ``paid_at`` ISO 8601
with an offset, ``amount_paid`` the cumulative amount paid as an exact decimal string,
``payment_status`` "partial" or "paid" - re-read like the invoices file (bad lines skipped
and reported). ``POST /_sandbox/payments`` adds one more at run time (in memory; ``paid_at``
defaults to the clock's now: "the buyer pays now").

Clock: the knob ``clock`` (ISO 8601 with an offset, or null for real time) is "now" for
payments: an event is in effect once ``paid_at <= now``. Each record is served with the
latest event in effect for its number overlaid: ``payment_status`` and ``amount_paid`` from
the event, ``paid_at`` set to the event's when it says "paid" (dropped otherwise), and
``updated_at`` = the later of the record's own ``updated_at`` (else ``issued_at``) and the
event's ``paid_at``. Only overlaid records are re-serialised; every other record is passed
through byte for byte (its JSON text as in the file).

``updated_after`` (strict, like ``issued_after``) keeps only records whose effective
``updated_at`` - the overlaid one, else the record's own, else its ``issued_at`` - is after
it; with ``issued_after`` both must hold. The order is the same; the cursor carries both
filters, and a cursor sent with a different value of either is a 400.

Knobs (``POST /_sandbox/config``): ``latency_ms``, ``fail_rate`` (fraction of list calls
answered 503), ``seed``, ``clock``. ``POST /_sandbox/reset`` restores the knobs and drops
the runtime payments. Optional bearer token (``api_token``), off by default.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import logging
import random
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    read_json_object,
    sleep_ms,
)

log = logging.getLogger("sandbox.erp")

DEFAULT_LIMIT = 100
ALLOWED_PARAMS = frozenset({"issued_after", "updated_after", "limit", "cursor"})
CURSOR_VERSION = 1

#: What a payment event may say about its invoice afterwards.
PAYMENT_STATUSES = ("partial", "paid")
PAYMENT_FIELDS = frozenset({"number", "paid_at", "amount_paid", "payment_status"})
_DECIMAL = re.compile(r"\d+(\.\d+)?")  # exact decimal text: no sign, exponent or NaN

SortKey = tuple[datetime, str, int]


class BadParameter(ValueError):
    pass


def parse_instant(value: Any, what: str) -> datetime:
    """An offset-carrying ISO 8601 datetime as an aware UTC datetime."""
    if not isinstance(value, str):
        raise BadParameter(f"{what} must be an ISO 8601 datetime string")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        hint = " (a '+' in a query string must be sent as %2B)" if " " in value else ""
        raise BadParameter(f"{what} is not an ISO 8601 datetime: {value!r}{hint}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise BadParameter(f"{what} must carry a UTC offset (e.g. +07:00 or Z): {value!r}")
    return moment.astimezone(UTC)


def instant_knob() -> KnobValidator:
    """An ISO 8601 datetime with an offset, or null; kept as written (stripped)."""

    def validate(name: str, value: Any) -> Any:
        if value is None:
            return None
        try:
            parse_instant(value, f"knob '{name}'")
        except BadParameter as exc:
            raise KnobError(f"{exc}, or null for real time") from None
        return value.strip()

    return validate


KNOB_SPEC = {
    "latency_ms": (number_knob(0), 0.0),
    "fail_rate": (number_knob(0, 1), 0.0),
    "seed": (int_knob(nullable=True), None),
    # "Now" for payments (null: the real time), so a demo can jump to a later date.
    "clock": (instant_knob(), None),
}


@dataclass(frozen=True)
class Record:
    key: SortKey
    raw: str  # the record's JSON text exactly as in the file
    # The record's own updated_at (else issued_at), as an instant and as written.
    updated: datetime
    updated_text: str

    @property
    def number(self) -> str:
        return self.key[1]


@dataclass(frozen=True)
class Payment:
    number: str
    paid_at: datetime  # as an instant (UTC)
    paid_at_text: str  # as written, offset and all: what records are served with
    amount_paid: str  # cumulative, exact decimal text as written
    payment_status: str  # after this payment: "partial" | "paid"

    def as_dict(self) -> dict[str, str]:
        return {
            "number": self.number,
            "paid_at": self.paid_at_text,
            "amount_paid": self.amount_paid,
            "payment_status": self.payment_status,
        }


def parse_payment(obj: Any, *, strict: bool = False, now: datetime | None = None) -> Payment:
    """A payment event from a JSON object; ``BadParameter`` names what is wrong.

    ``strict`` refuses unknown fields (a typo in a request); ``now`` (if given) stands in
    for a missing ``paid_at``.
    """
    if not isinstance(obj, dict):
        raise BadParameter("a payment must be a JSON object")
    unknown = sorted(set(obj) - PAYMENT_FIELDS)
    if strict and unknown:
        raise BadParameter(
            f"unknown payment field(s): {', '.join(unknown)}; known: {sorted(PAYMENT_FIELDS)}"
        )
    number = obj.get("number")
    if not isinstance(number, str | int) or isinstance(number, bool) or str(number).strip() == "":
        raise BadParameter("missing or non-string 'number'")
    raw_paid_at = obj.get("paid_at")
    if raw_paid_at is None and now is not None:
        paid_at, paid_at_text = now, now.isoformat()
    else:
        paid_at, paid_at_text = parse_instant(raw_paid_at, "paid_at"), str(raw_paid_at).strip()
    amount = obj.get("amount_paid")
    # A string, never a JSON number: money must not pass through a float.
    if not isinstance(amount, str) or not _DECIMAL.fullmatch(amount.strip()):
        raise BadParameter(
            f'amount_paid must be a non-negative decimal string like "1070.00", got {amount!r}'
        )
    status = obj.get("payment_status")
    if status not in PAYMENT_STATUSES:
        raise BadParameter(
            f"payment_status must be one of {', '.join(PAYMENT_STATUSES)}, got {status!r}"
        )
    return Payment(str(number), paid_at, paid_at_text, amount.strip(), str(status))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(
    key: SortKey, issued_after: datetime | None, updated_after: datetime | None = None
) -> str:
    payload = {
        "v": CURSOR_VERSION,
        "t": key[0].isoformat(),
        "n": key[1],
        "k": key[2],
        "f": issued_after.isoformat() if issued_after else None,
        "u": updated_after.isoformat() if updated_after else None,
    }
    return _b64(json.dumps(payload, separators=(",", ":")).encode())


def decode_cursor(cursor: str) -> tuple[SortKey, datetime | None, datetime | None]:
    """``(last key served, issued_after, updated_after of the walk)`` from a cursor this API
    issued."""
    try:
        payload = json.loads(_unb64(cursor))
        if not isinstance(payload, dict) or payload.get("v") != CURSOR_VERSION:
            raise ValueError("wrong version")
        key: SortKey = (
            datetime.fromisoformat(payload["t"]).astimezone(UTC),
            str(payload["n"]),
            int(payload["k"]),
        )
        walk_after = None if payload["f"] is None else datetime.fromisoformat(payload["f"])
        # "u" is absent from cursors issued before updated_after existed: no filter.
        updated = payload.get("u")
        walk_updated = None if updated is None else datetime.fromisoformat(updated)
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadParameter("cursor is not one this API issued") from None
    return key, walk_after, walk_updated


def _file_signature(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def _json_lines(path: Path, skipped: list[dict[str, Any]]) -> list[tuple[int, str, Any]]:
    """``(line number, text, parsed JSON)`` of each non-blank line; lines that are not UTF-8
    or not JSON go to ``skipped``."""
    lines: list[tuple[int, str, Any]] = []
    for line_no, line in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            raw = line.decode("utf-8").strip()
        except UnicodeDecodeError:
            skipped.append({"line": line_no, "reason": "not valid UTF-8"})
            continue
        if not raw:
            continue
        try:
            lines.append((line_no, raw, json.loads(raw)))
        except json.JSONDecodeError as exc:
            skipped.append({"line": line_no, "reason": str(exc)})
    return lines


PaymentIndex = dict[str, tuple[list[datetime], list[Payment]]]


class PaymentBook:
    """Payment events: those of the (optional) JSON Lines file, re-read when it changes, and
    those added at run time, which come after the file's (a reset drops them)."""

    def __init__(self, path: Path | None) -> None:
        self.path = None if path is None else Path(path)
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self._file_events: list[Payment] = []
        self._runtime: list[Payment] = []
        self._skipped: list[dict[str, Any]] = []
        self._index: PaymentIndex | None = None
        self.loads = 0

    def _refresh(self) -> None:
        """Re-read the file if it changed (call with the lock held)."""
        if self.path is None:
            return
        signature = _file_signature(self.path)
        if signature != self._signature or self.loads == 0:
            self._file_events, self._skipped = self._load() if signature else ([], [])
            self._signature = signature
            self._index = None
            self.loads += 1

    def _load(self) -> tuple[list[Payment], list[dict[str, Any]]]:
        assert self.path is not None
        skipped: list[dict[str, Any]] = []
        events: list[Payment] = []
        for line_no, _, obj in _json_lines(self.path, skipped):
            try:
                events.append(parse_payment(obj))
            except BadParameter as exc:
                skipped.append({"line": line_no, "reason": str(exc)})
        if skipped:
            log.warning("%s: skipped %d bad payment line(s)", self.path, len(skipped))
        return events, skipped

    def index(self) -> PaymentIndex:
        """Per number, the events sorted by ``paid_at`` (ties: file order, then the order
        they were added) with their instants, for bisecting."""
        with self._lock:
            self._refresh()
            if self._index is None:
                grouped: dict[str, list[Payment]] = {}
                for event in self._file_events + self._runtime:
                    grouped.setdefault(event.number, []).append(event)
                self._index = {}
                for number, events in grouped.items():
                    events.sort(key=lambda e: e.paid_at)  # stable: keeps the order among ties
                    self._index[number] = ([e.paid_at for e in events], events)
            return self._index

    def add(self, event: Payment) -> int:
        with self._lock:
            self._runtime.append(event)
            self._index = None
            return len(self._runtime)

    def clear_runtime(self) -> None:
        with self._lock:
            self._runtime = []
            self._index = None

    def status(self) -> dict[str, Any]:
        with self._lock:
            self._refresh()
            return {
                "path": None if self.path is None else str(self.path),
                "exists": self._signature is not None,
                "events": len(self._file_events) + len(self._runtime),
                "file_events": len(self._file_events),
                "runtime_events": len(self._runtime),
                "skipped": list(self._skipped),
                "loads": self.loads,
            }


def in_effect(index: PaymentIndex, number: str, now: datetime) -> Payment | None:
    """The latest event for ``number`` with ``paid_at <= now``, if any."""
    entry = index.get(number)
    if entry is None:
        return None
    instants, events = entry
    position = bisect.bisect_right(instants, now)
    return events[position - 1] if position else None


def effective_updated(record: Record, event: Payment | None) -> datetime:
    if event is None or event.paid_at <= record.updated:
        return record.updated
    return event.paid_at


def overlaid(record: Record, event: Payment | None) -> str:
    """The record's JSON text with ``event`` applied (the file's text when there is none)."""
    if event is None:
        return record.raw
    obj = json.loads(record.raw)
    obj["payment_status"] = event.payment_status
    obj["amount_paid"] = event.amount_paid
    if event.payment_status == "paid":
        obj["paid_at"] = event.paid_at_text
    else:
        obj.pop("paid_at", None)  # paid_at means fully paid; a stale one would contradict
    obj["updated_at"] = (
        event.paid_at_text if event.paid_at > record.updated else record.updated_text
    )
    return json.dumps(obj, ensure_ascii=False)


class InvoiceSource:
    def __init__(
        self,
        invoices_path: Path,
        page_size_max: int,
        knobs: Mapping[str, Any] | None,
        payments_path: Path | None = None,
    ) -> None:
        self.path = Path(invoices_path)
        self.page_size_max = page_size_max
        self.knobs = Knobs(KNOB_SPEC, knobs)
        self.payments = PaymentBook(payments_path)
        self._rng = random.Random(self.knobs["seed"])
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self._records: list[Record] = []
        self._skipped: list[dict[str, Any]] = []
        self.loads = 0

    def configure(self, changes: Mapping[str, Any]) -> None:
        self.knobs.update(changes)
        if "seed" in changes:
            self._rng = random.Random(self.knobs["seed"])

    def now(self) -> datetime:
        """The ``clock`` knob's time, else the real time (UTC)."""
        clock = self.knobs["clock"]
        return datetime.now(UTC) if clock is None else parse_instant(clock, "clock")

    def should_fail(self) -> bool:
        rate = float(self.knobs["fail_rate"])
        with self._lock:
            return rate > 0 and self._rng.random() < rate

    def records(self) -> list[Record]:
        """The sorted records, re-read if the file changed since the last read."""
        signature = _file_signature(self.path)
        with self._lock:
            if signature != self._signature or self.loads == 0:
                self._records, self._skipped = self._load() if signature else ([], [])
                self._signature = signature
                self.loads += 1
            return self._records

    def _load(self) -> tuple[list[Record], list[dict[str, Any]]]:
        parsed: list[tuple[datetime, str, str, datetime, str]] = []
        skipped: list[dict[str, Any]] = []
        for line_no, raw, obj in _json_lines(self.path, skipped):
            try:
                if not isinstance(obj, dict):
                    raise BadParameter("not a JSON object")
                number = obj.get("number")
                if not isinstance(number, str | int) or isinstance(number, bool) or number == "":
                    raise BadParameter("missing or non-string 'number'")
                issued = parse_instant(obj.get("issued_at"), "issued_at")
            except BadParameter as exc:
                skipped.append({"line": line_no, "reason": str(exc)})
                continue
            updated, updated_text = issued, str(obj["issued_at"]).strip()
            try:
                updated = parse_instant(obj["updated_at"], "updated_at")
                updated_text = str(obj["updated_at"]).strip()
            except (KeyError, BadParameter):
                # Served as it is (Courier must reject a bad one itself); issued_at stands in.
                pass
            parsed.append((issued, str(number), raw, updated, updated_text))
        skipped.sort(key=lambda item: int(item["line"]))
        parsed.sort(key=lambda item: (item[0], item[1]))
        records: list[Record] = []
        previous: tuple[datetime, str] | None = None
        duplicate = 0
        for issued, number, raw, updated, updated_text in parsed:  # stable: file order on ties
            duplicate = duplicate + 1 if previous == (issued, number) else 0
            previous = (issued, number)
            records.append(Record((issued, number, duplicate), raw, updated, updated_text))
        if skipped:
            log.warning("%s: skipped %d bad line(s)", self.path, len(skipped))
        return records, skipped

    def status(self) -> dict[str, Any]:
        records = self.records()
        payments = self.payments.status()
        with self._lock:
            return {
                "path": str(self.path),
                "exists": self._signature is not None,
                "records": len(records),
                "skipped": list(self._skipped),
                "loads": self.loads,
                "payments": payments,
                "clock": self.knobs["clock"],
                "now": self.now().isoformat(),
            }

    def page(self, query: Mapping[str, str]) -> tuple[list[str], str | None]:
        unknown = sorted(set(query) - ALLOWED_PARAMS)
        if unknown:
            raise BadParameter(f"unknown parameter(s): {', '.join(unknown)}")
        after_raw = query.get("issued_after")
        issued_after = parse_instant(after_raw, "issued_after") if after_raw else None
        updated_raw = query.get("updated_after")
        updated_after = parse_instant(updated_raw, "updated_after") if updated_raw else None
        limit = _limit(query.get("limit"), self.page_size_max)
        cursor = query.get("cursor")
        position: SortKey | None = None
        if cursor:
            # The cursor carries the walk's filters: repeating them is optional,
            # contradicting one is an error.
            position, walk_after, walk_updated = decode_cursor(cursor)
            if after_raw and issued_after != walk_after:
                raise BadParameter("cursor was issued for a different issued_after; start over")
            if updated_raw and updated_after != walk_updated:
                raise BadParameter("cursor was issued for a different updated_after; start over")
            issued_after, updated_after = walk_after, walk_updated

        records = self.records()
        payments = self.payments.index()
        now = self.now()
        lo = 0
        if position is not None:
            lo = bisect.bisect_right(records, position, key=lambda record: record.key)
        if issued_after is not None:  # strictly after
            lo = max(lo, bisect.bisect_right(records, issued_after, key=lambda r: r.key[0]))
        # One pass from lo: without updated_after it stops after limit + 1 records; with it,
        # it scans on until a match past the page shows there is more.
        rows: list[str] = []
        last: SortKey | None = None
        more = False
        for record in records[lo:] if updated_after is not None else records[lo : lo + limit + 1]:
            event = in_effect(payments, record.number, now)
            if updated_after is not None and effective_updated(record, event) <= updated_after:
                continue
            if len(rows) == limit:
                more = True
                break
            rows.append(overlaid(record, event))
            last = record.key
        next_cursor = encode_cursor(last, issued_after, updated_after) if more and last else None
        return rows, next_cursor


def _limit(raw: str | None, maximum: int) -> int:
    if raw is None or raw == "":
        return min(DEFAULT_LIMIT, maximum)
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(f"limit must be an integer, got {raw!r}") from None
    if not 1 <= value <= maximum:
        raise BadParameter(f"limit must be between 1 and {maximum}")
    return value


def _error(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status)


def create_invoice_api_app(
    invoices_path: Path,
    page_size_max: int = 200,
    knobs: dict[str, Any] | None = None,
    api_token: str | None = None,
    payments_path: Path | None = None,
) -> Starlette:
    """ASGI app serving ``invoices_path`` (JSON Lines) as a paginated invoice API.

    With ``api_token`` set, ``/api/v1/...`` requires ``Authorization: Bearer <api_token>``.
    ``payments_path`` (optional; missing file: no events) holds payment events overlaid on
    the records by the ``clock`` knob (see the module docstring).
    """
    if page_size_max < 1:
        raise ValueError("page_size_max must be >= 1")
    source = InvoiceSource(invoices_path, page_size_max, knobs, payments_path)

    def authorized(request: Request) -> bool:
        if not api_token:
            return True
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(
            token.strip().encode(), api_token.encode()
        )

    async def list_invoices(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "unauthorized", "missing or wrong bearer token")
        await sleep_ms(source.knobs["latency_ms"])
        if source.should_fail():
            return _error(503, "unavailable", "injected failure (sandbox knob fail_rate)")
        try:
            rows, next_cursor = source.page(request.query_params)
        except BadParameter as exc:
            return _error(400, "bad_request", str(exc))
        body = '{"data":[' + ",".join(rows) + '],"next_cursor":' + json.dumps(next_cursor) + "}"
        return Response(body, media_type="application/json")

    async def admin_status(request: Request) -> Response:
        return JSONResponse(source.status())

    async def admin_config(request: Request) -> Response:
        return await config_endpoint(request, source.knobs, source.configure)

    async def admin_payments(request: Request) -> Response:
        try:
            event = parse_payment(await read_json_object(request), strict=True, now=source.now())
        except (KnobError, BadParameter) as exc:
            return _error(400, "bad_payment", str(exc))
        count = source.payments.add(event)
        known = any(record.number == event.number for record in source.records())
        return JSONResponse(
            {
                "status": "added",
                "event": event.as_dict(),
                "runtime_events": count,
                "known_invoice": known,
            },
            status_code=201,
        )

    async def admin_reset(request: Request) -> Response:
        source.knobs.reset()
        source.configure({"seed": source.knobs["seed"]})
        source.payments.clear_runtime()
        return JSONResponse({"status": "reset"})

    async def health(request: Request) -> Response:
        return health_response("invoice_api")

    app = Starlette(
        routes=[
            Route("/api/v1/invoices", list_invoices, methods=["GET"]),
            Route("/_sandbox/health", health, methods=["GET"]),
            Route("/_sandbox/status", admin_status, methods=["GET"]),
            Route("/_sandbox/config", admin_config, methods=["GET", "POST"]),
            Route("/_sandbox/payments", admin_payments, methods=["POST"]),
            Route("/_sandbox/reset", admin_reset, methods=["POST"]),
        ]
    )
    app.state.source = source
    return app
