"""Sandbox invoice source (a stand-in ERP) serving a JSON Lines file over a paginated API.

``GET /api/v1/invoices?issued_after=<ISO 8601 with offset>&limit=<n>&cursor=<opaque>``
-> ``{"data": [...], "next_cursor": "<opaque>" | null}``.

Records are sorted by ``(issued_at as an instant, number)``; paging is by key (the cursor
carries the last record's key), so it stays stable when the file grows or is rewritten:
every record present for the whole walk is returned exactly once. ``issued_after`` is
strict (``issued_at > issued_after``). Records are passed through byte for byte (their JSON
text is not re-serialised). The file is re-read whenever its mtime, size or inode changes;
a line that is not a JSON object with ``number`` and a parseable, offset-carrying
``issued_at`` is skipped and reported by ``GET /_sandbox/status``.

Knobs (``POST /_sandbox/config``): ``latency_ms``, ``fail_rate`` (fraction of list calls
answered 503), ``seed``. Optional bearer token (``api_token``), off by default.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import logging
import random
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
    Knobs,
    config_endpoint,
    health_response,
    int_knob,
    number_knob,
    sleep_ms,
)

log = logging.getLogger("sandbox.erp")

DEFAULT_LIMIT = 100
ALLOWED_PARAMS = frozenset({"issued_after", "limit", "cursor"})
CURSOR_VERSION = 1

KNOB_SPEC = {
    "latency_ms": (number_knob(0), 0.0),
    "fail_rate": (number_knob(0, 1), 0.0),
    "seed": (int_knob(nullable=True), None),
}

SortKey = tuple[datetime, str, int]


class BadParameter(ValueError):
    pass


@dataclass(frozen=True)
class Record:
    key: SortKey
    raw: str  # the record's JSON text exactly as in the file


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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(key: SortKey, issued_after: datetime | None) -> str:
    payload = {
        "v": CURSOR_VERSION,
        "t": key[0].isoformat(),
        "n": key[1],
        "k": key[2],
        "f": issued_after.isoformat() if issued_after else None,
    }
    return _b64(json.dumps(payload, separators=(",", ":")).encode())


def decode_cursor(cursor: str) -> tuple[SortKey, datetime | None]:
    """``(last key served, issued_after of the walk)`` from a cursor this API issued."""
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
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadParameter("cursor is not one this API issued") from None
    return key, walk_after


class InvoiceSource:
    def __init__(
        self, invoices_path: Path, page_size_max: int, knobs: Mapping[str, Any] | None
    ) -> None:
        self.path = Path(invoices_path)
        self.page_size_max = page_size_max
        self.knobs = Knobs(KNOB_SPEC, knobs)
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

    def should_fail(self) -> bool:
        rate = float(self.knobs["fail_rate"])
        with self._lock:
            return rate > 0 and self._rng.random() < rate

    def records(self) -> list[Record]:
        """The sorted records, re-read if the file changed since the last read."""
        try:
            stat = self.path.stat()
            signature: tuple[int, int, int] | None = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except FileNotFoundError:
            signature = None
        with self._lock:
            if signature != self._signature or self.loads == 0:
                self._records, self._skipped = self._load() if signature else ([], [])
                self._signature = signature
                self.loads += 1
            return self._records

    def _load(self) -> tuple[list[Record], list[dict[str, Any]]]:
        parsed: list[tuple[datetime, str, str]] = []
        skipped: list[dict[str, Any]] = []
        for line_no, line in enumerate(self.path.read_bytes().splitlines(), start=1):
            try:
                raw = line.decode("utf-8").strip()
            except UnicodeDecodeError:
                skipped.append({"line": line_no, "reason": "not valid UTF-8"})
                continue
            if not raw:
                continue
            try:
                obj = json.loads(raw)
                if not isinstance(obj, dict):
                    raise BadParameter("not a JSON object")
                number = obj.get("number")
                if not isinstance(number, str | int) or isinstance(number, bool) or number == "":
                    raise BadParameter("missing or non-string 'number'")
                issued = parse_instant(obj.get("issued_at"), "issued_at")
            except (json.JSONDecodeError, BadParameter) as exc:
                skipped.append({"line": line_no, "reason": str(exc)})
                continue
            parsed.append((issued, str(number), raw))
        parsed.sort(key=lambda item: (item[0], item[1]))
        records: list[Record] = []
        previous: tuple[datetime, str] | None = None
        duplicate = 0
        for issued, number, raw in parsed:  # sort is stable: file order among equal keys
            duplicate = duplicate + 1 if previous == (issued, number) else 0
            previous = (issued, number)
            records.append(Record((issued, number, duplicate), raw))
        if skipped:
            log.warning("%s: skipped %d bad line(s)", self.path, len(skipped))
        return records, skipped

    def status(self) -> dict[str, Any]:
        records = self.records()
        with self._lock:
            return {
                "path": str(self.path),
                "exists": self._signature is not None,
                "records": len(records),
                "skipped": list(self._skipped),
                "loads": self.loads,
            }

    def page(self, query: Mapping[str, str]) -> tuple[list[str], str | None]:
        unknown = sorted(set(query) - ALLOWED_PARAMS)
        if unknown:
            raise BadParameter(f"unknown parameter(s): {', '.join(unknown)}")
        after_raw = query.get("issued_after")
        issued_after = parse_instant(after_raw, "issued_after") if after_raw else None
        limit = _limit(query.get("limit"), self.page_size_max)
        cursor = query.get("cursor")
        position: SortKey | None = None
        if cursor:
            # The cursor carries the walk's filter: repeating issued_after is optional,
            # contradicting it is an error.
            position, walk_after = decode_cursor(cursor)
            if after_raw and issued_after != walk_after:
                raise BadParameter("cursor was issued for a different issued_after; start over")
            issued_after = walk_after

        records = self.records()
        lo, hi = 0, len(records)
        if position is not None:
            lo = bisect.bisect_right(records, position, key=lambda record: record.key)
        if issued_after is not None:  # strictly after
            lo = max(lo, bisect.bisect_right(records, issued_after, key=lambda r: r.key[0]))
        chunk = records[lo : lo + limit]
        more = lo + limit < hi
        next_cursor = encode_cursor(chunk[-1].key, issued_after) if more and chunk else None
        return [record.raw for record in chunk], next_cursor


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
) -> Starlette:
    """ASGI app serving ``invoices_path`` (JSON Lines) as a paginated invoice API.

    With ``api_token`` set, ``/api/v1/...`` requires ``Authorization: Bearer <api_token>``.
    """
    if page_size_max < 1:
        raise ValueError("page_size_max must be >= 1")
    source = InvoiceSource(invoices_path, page_size_max, knobs)

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

    async def admin_reset(request: Request) -> Response:
        source.knobs.reset()
        source.configure({"seed": source.knobs["seed"]})
        return JSONResponse({"status": "reset"})

    async def health(request: Request) -> Response:
        return health_response("invoice_api")

    app = Starlette(
        routes=[
            Route("/api/v1/invoices", list_invoices, methods=["GET"]),
            Route("/_sandbox/health", health, methods=["GET"]),
            Route("/_sandbox/status", admin_status, methods=["GET"]),
            Route("/_sandbox/config", admin_config, methods=["GET", "POST"]),
            Route("/_sandbox/reset", admin_reset, methods=["POST"]),
        ]
    )
    app.state.source = source
    return app
