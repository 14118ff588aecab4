"""Small helpers shared by the sandbox services (knobs, SQLite, health, latency).

Nothing here knows about any particular service, and nothing imports ``courier``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

KnobValidator = Callable[[str, Any], Any]


class KnobError(ValueError):
    """A knob name or value the service does not accept."""


def number_knob(
    minimum: float | None = None, maximum: float | None = None, *, nullable: bool = False
) -> KnobValidator:
    def validate(name: str, value: Any) -> Any:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise KnobError(f"knob '{name}' must be a number{' or null' if nullable else ''}")
        if minimum is not None and value < minimum:
            raise KnobError(f"knob '{name}' must be >= {minimum}")
        if maximum is not None and value > maximum:
            raise KnobError(f"knob '{name}' must be <= {maximum}")
        return float(value)

    return validate


def int_knob(minimum: int | None = None, *, nullable: bool = False) -> KnobValidator:
    def validate(name: str, value: Any) -> Any:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise KnobError(f"knob '{name}' must be an integer{' or null' if nullable else ''}")
        if minimum is not None and value < minimum:
            raise KnobError(f"knob '{name}' must be >= {minimum}")
        return value

    return validate


def int_list_knob(allowed: Collection[int] | None = None) -> KnobValidator:
    """A non-empty JSON list of integers, each one of ``allowed`` (when given)."""

    def validate(name: str, value: Any) -> Any:
        if (
            not isinstance(value, list)
            or not value
            or any(isinstance(item, bool) or not isinstance(item, int) for item in value)
        ):
            raise KnobError(f"knob '{name}' must be a non-empty list of integers")
        if allowed is not None:
            unknown = sorted(set(value) - set(allowed))
            if unknown:
                raise KnobError(
                    f"knob '{name}': unknown value(s) {unknown}; known: {sorted(allowed)}"
                )
        return list(value)

    return validate


def bool_knob() -> KnobValidator:
    def validate(name: str, value: Any) -> Any:
        if not isinstance(value, bool):
            raise KnobError(f"knob '{name}' must be true or false")
        return value

    return validate


def str_knob(*, nullable: bool = False) -> KnobValidator:
    def validate(name: str, value: Any) -> Any:
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            raise KnobError(f"knob '{name}' must be a string{' or null' if nullable else ''}")
        return value

    return validate


class Knobs:
    """Validated runtime settings of one sandbox service.

    ``spec`` maps each knob name to ``(validator, default)``. The values given at creation
    become the baseline that ``reset()`` returns to.
    """

    def __init__(
        self,
        spec: Mapping[str, tuple[KnobValidator, Any]],
        initial: Mapping[str, Any] | None = None,
    ) -> None:
        self._spec = dict(spec)
        defaults = {name: default for name, (_, default) in self._spec.items()}
        self._baseline = {**defaults, **self._validated(initial or {})}
        self._values = dict(self._baseline)

    def _validated(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(changes) - set(self._spec))
        if unknown:
            raise KnobError(f"unknown knob(s): {', '.join(unknown)}; known: {sorted(self._spec)}")
        return {name: self._spec[name][0](name, value) for name, value in changes.items()}

    def update(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Apply all changes or none; return the changed knobs' new values."""
        checked = self._validated(changes)
        self._values.update(checked)
        return checked

    def reset(self) -> None:
        self._values = dict(self._baseline)

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)


async def read_json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object (empty body -> {}); raises ``KnobError`` otherwise."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise KnobError(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise KnobError("body must be a JSON object")
    return data


async def config_endpoint(
    request: Request,
    knobs: Knobs,
    apply: Callable[[Mapping[str, Any]], object] | None = None,
) -> Response:
    """GET -> current knobs; POST JSON object -> update (atomically) and return all knobs.

    ``apply`` (default ``knobs.update``) lets a service react to the changes it applies.
    """
    if request.method == "POST":
        try:
            (apply or knobs.update)(await read_json_object(request))
        except KnobError as exc:
            return JSONResponse({"error": "bad_config", "message": str(exc)}, status_code=400)
    return JSONResponse(knobs.as_dict())


def health_response(service: str) -> Response:
    return JSONResponse({"status": "ok", "service": service})


async def sleep_ms(milliseconds: float) -> None:
    if milliseconds > 0:
        await asyncio.sleep(milliseconds / 1000.0)


@contextlib.contextmanager
def sqlite_connection(path: Path) -> Iterator[sqlite3.Connection]:
    """One short-lived connection: commit on success, roll back on error, always close."""
    conn = sqlite3.connect(path, timeout=30.0)
    conn.row_factory = sqlite3.Row
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def init_sqlite(path: Path, schema: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30.0)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(schema)
        conn.commit()
    finally:
        conn.close()


class TokenBucket:
    """Rate limiter: a bucket of ``capacity`` tokens, refilled continuously at ``rate``/s.

    The bucket starts full; each admitted call takes one token; a call that finds less than
    one token is refused and takes nothing. ``capacity`` defaults to ``max(1, rate)``, so:

    - any arrival sequence with at most ``rate`` calls in every 1-second window ``[t, t+1)``
      is admitted in full (over any span of ``d`` seconds such a sequence makes at most
      ``rate * (d + 1)`` calls, and the bucket admits ``capacity + rate * d``);
    - a client pacing evenly at ``rate`` keeps the bucket nearly full, so arrival jitter of
      up to ``(capacity - 1) / rate`` seconds costs it nothing;
    - the long-run average never exceeds ``rate``; a burst of at most ``capacity`` calls
      gets through at once, and fewer than ``capacity + rate`` in any 1-second window (for
      an integer ``rate``: at most ``2 * rate - 1``).

    ``rate <= 0`` refuses every call. ``clock`` (seconds, monotonic) is injectable for tests.
    """

    #: Tolerance for float rounding at exact window boundaries.
    EPSILON = 1e-9

    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = float(rate)
        if capacity is None:
            capacity = max(1.0, self.rate) if self.rate > 0 else 0.0
        self.capacity = float(capacity)
        self._clock = clock
        self._tokens = self.capacity
        self._stamp = clock()
        self._lock = threading.Lock()

    def take(self) -> float | None:
        """None if the call is admitted (one token taken); else seconds until a token."""
        with self._lock:
            now = self._clock()
            if self.rate > 0:
                elapsed = max(0.0, now - self._stamp)
                self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
            self._stamp = now
            if self.rate > 0 and self._tokens >= 1.0 - self.EPSILON:
                self._tokens = max(0.0, self._tokens - 1.0)
                return None
            if self.rate <= 0:
                return 1.0
            return (1.0 - self._tokens) / self.rate

    @staticmethod
    def retry_after_header(wait: float) -> str:
        """``Retry-After`` is whole seconds: round the wait up, and never say 0."""
        return str(max(1, math.ceil(wait)))
