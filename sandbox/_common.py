"""Small helpers shared by the sandbox services (knobs, SQLite, health, latency).

Nothing here knows about any particular service, and nothing imports ``courier``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping
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


def int_knob(*, nullable: bool = False) -> KnobValidator:
    def validate(name: str, value: Any) -> Any:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise KnobError(f"knob '{name}' must be an integer{' or null' if nullable else ''}")
        return value

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
