"""Stoplight Prism (a third-party OpenAPI validator) as a subprocess for conformance tests.

Prism comes from the npm registry, pinned in ``tools/conformance/package-lock.json`` and
installed with ``npm ci`` there (``make test`` does it first). Without it the tests that need
it are skipped with the reason, unless ``COURIER_REQUIRE_PRISM=1`` turns the skip into a
failure (for CI).

``prism proxy --errors <spec> <upstream>`` forwards each request to ``upstream`` and checks
both directions against the OpenAPI document:

- an invalid request is answered by Prism itself, **422** ``application/problem+json`` with
  ``type .../errors#UNPROCESSABLE_ENTITY`` and a ``validation`` list, and never forwarded;
  a missing or wrong-scheme ``Authorization`` gets Prism's own **401** (``#UNAUTHORIZED``);
- an invalid response is replaced by **500** ``type .../errors#VIOLATIONS``;
- warnings (e.g. a status code the document does not list) never fail the call; they, like
  every violation, are listed in the ``sl-violations`` response header.

Without ``--errors`` nothing is blocked and ``sl-violations`` is the whole verdict.

The document's ``servers`` (``https://api.twilio.com``) do not matter: Prism matches an
incoming request by path only (no flag needed), and the proxy forwards to ``upstream``.
Prism is started with ``--port 0`` and announces the port it got on stdout, so there is no
port race.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import stop_process

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE_DIR = REPO_ROOT / "tools" / "conformance"
PRISM_BIN = CONFORMANCE_DIR / "node_modules" / ".bin" / "prism"
REQUIRE_ENV = "COURIER_REQUIRE_PRISM"

PROBLEM_TYPE = "https://stoplight.io/prism/errors#"
#: Prism's problem types that mean "the exchange broke the contract".
INVALID_REQUEST = PROBLEM_TYPE + "UNPROCESSABLE_ENTITY"
INVALID_RESPONSE = PROBLEM_TYPE + "VIOLATIONS"
UNAUTHORIZED = PROBLEM_TYPE + "UNAUTHORIZED"

_LISTENING = re.compile(r"Prism is listening on (http://\S+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def prism_missing_reason() -> str | None:
    if not PRISM_BIN.exists():
        return (
            f"Stoplight Prism is not installed ({PRISM_BIN.relative_to(REPO_ROOT)} missing): "
            "run `make tools/conformance/node_modules` "
            "(= `npm ci --no-audit --no-fund` in tools/conformance)"
        )
    try:
        subprocess.run(["node", "--version"], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "Stoplight Prism needs Node.js (`node` on PATH; Node >= 18.20.1)"
    return None


def require_prism() -> Path:
    """The Prism executable; else skip (or fail when ``COURIER_REQUIRE_PRISM=1``)."""
    reason = prism_missing_reason()
    if reason is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return PRISM_BIN


def installed_prism_version() -> str:
    """Version of the @stoplight/prism-cli that ``npm ci`` installed."""
    require_prism()
    manifest = CONFORMANCE_DIR / "node_modules" / "@stoplight" / "prism-cli" / "package.json"
    return str(json.loads(manifest.read_text())["version"])


@dataclass
class Prism:
    """One Prism process: ``proxy`` to ``upstream``, or ``mock`` when ``upstream`` is None."""

    document: Path
    upstream: str | None
    log_path: Path
    errors: bool = True
    url: str = ""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def command(self) -> list[str]:
        prism = str(require_prism())
        if self.upstream:
            # --validate-request is the default; spelled out because the checks rely on it.
            args = [prism, "proxy", str(self.document), self.upstream, "--validate-request"]
        else:
            args = [prism, "mock", str(self.document)]  # mock always validates requests
        if self.errors:
            args.append("--errors")
        return [*args, "--host", "127.0.0.1", "--port", "0"]

    def launch(self) -> None:
        """Start the process without waiting (see ``wait_ready``)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=CONFORMANCE_DIR,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"},
            )

    def log(self) -> str:
        try:
            return _ANSI.sub("", self.log_path.read_text(errors="replace"))
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def wait_ready(self, timeout: float = 90.0) -> str:
        """Block until Prism announces its address and accepts a connection; return it."""
        assert self.process is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while not self.url:
            found = _LISTENING.search(self.log())
            if found:
                self.url = found.group(1).rstrip("/")
                break
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"Prism exited with {self.process.returncode} before listening:\n"
                    + self.log_tail()
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Prism did not start within {timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)
        while True:  # the line is printed once listening, but do not rely on it
            try:
                httpx.get(self.url + "/", timeout=2)
                return self.url
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"Prism at {self.url} does not answer") from None
                time.sleep(0.05)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        stop_process(process)


@contextlib.contextmanager
def running(*prisms: Prism, timeout: float = 90.0) -> Iterator[tuple[Prism, ...]]:
    """Start several Prism processes at once (each parses the document) and stop them all."""
    try:
        for prism in prisms:
            prism.launch()
        for prism in prisms:
            prism.wait_ready(timeout)
        yield prisms
    finally:
        for prism in prisms:
            prism.stop()


# --- reading Prism's verdict ---------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """One finding; ``location`` starts with ``request`` or ``response`` when Prism says."""

    location: tuple[str, ...]
    severity: str
    code: str
    message: str

    @classmethod
    def parse(cls, raw: dict[str, Any], side: str | None = None) -> Violation:
        location = tuple(str(part) for part in raw.get("location", ()))
        if side and location[:1] not in (("request",), ("response",)):
            location = (side, *location)
        return cls(location, str(raw.get("severity", "")), str(raw.get("code", "")), raw["message"])

    @property
    def is_error(self) -> bool:
        return self.severity == "Error"


@dataclass(frozen=True)
class Verdict:
    """What Prism made of one exchange."""

    status: int
    problem_type: str | None
    violations: tuple[Violation, ...]

    @property
    def errors(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.is_error)

    @property
    def warnings(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if not v.is_error)

    @property
    def blocked(self) -> bool:
        """Prism answered itself instead of passing the upstream's answer on."""
        return self.problem_type is not None

    def describe(self) -> str:
        head = f"HTTP {self.status}" + (f" {self.problem_type}" if self.problem_type else "")
        lines = [f"  [{v.severity}] {'.'.join(v.location)}: {v.message}" for v in self.violations]
        return "\n".join([head, *lines])


def verdict(response: httpx.Response) -> Verdict:
    """Prism's verdict on an (already read) response that came through a Prism proxy."""
    found: list[Violation] = []
    problem_type: str | None = None
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        body = response.json()
        if str(body.get("type", "")).startswith(PROBLEM_TYPE):
            problem_type = body["type"]
            side = "request" if problem_type == INVALID_REQUEST else None
            found += [Violation.parse(item, side) for item in body.get("validation", [])]
    header = response.headers.get("sl-violations")
    if header:
        found += [Violation.parse(item) for item in json.loads(header)]
    unique = tuple(dict.fromkeys(found))
    return Verdict(response.status_code, problem_type, unique)


@dataclass
class Exchange:
    method: str
    url: str
    status: int
    body: Any
    headers: httpx.Headers
    verdict: Verdict


@dataclass
class Recorder:
    """An httpx response hook that keeps Prism's verdict on every exchange a client makes."""

    exchanges: list[Exchange] = field(default_factory=list)

    def _record(self, response: httpx.Response) -> None:
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        self.exchanges.append(
            Exchange(
                response.request.method,
                str(response.request.url),
                response.status_code,
                body,
                response.headers,
                verdict(response),
            )
        )

    async def async_hook(self, response: httpx.Response) -> None:
        await response.aread()
        self._record(response)

    def hook(self, response: httpx.Response) -> None:
        response.read()
        self._record(response)

    def report(self) -> str:
        return (
            "\n".join(f"{x.method} {x.url}\n{x.verdict.describe()}" for x in self.exchanges)
            or "(no exchanges)"
        )

    def clear(self) -> None:
        self.exchanges.clear()
