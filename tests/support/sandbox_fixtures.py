"""Helpers for tests that talk to the sandbox services over real loopback HTTP.

Import the helpers and declare thin fixtures in the test module, e.g.::

    @pytest.fixture
    def sms(tmp_path):
        with SmsSandbox.started(tmp_path / "sms") as box:
            yield box
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.docstore import create_docstore_app
from sandbox.invoice_api import create_invoice_api_app
from sandbox.server import run_in_thread
from sandbox.sms_gateway import create_sms_app, validate_twilio_signature

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "sandbox-test-token"
DOCS_TOKEN = "sandbox-test-docs-token"

#: shared/ sits beside the repository (locally and in CI).
TWILIO_SPEC = Path(__file__).resolve().parents[2].parent / "shared/twilio/twilio_api_v2010.json"


@dataclass
class SmsSandbox:
    state_dir: Path
    knobs: dict[str, Any] | None = None
    url: str = ""
    client: httpx.Client = field(init=False, repr=False)
    _stop: Any = field(default=None, repr=False)

    def start(self) -> None:
        app = create_sms_app(self.state_dir, ACCOUNT_SID, AUTH_TOKEN, self.knobs)
        self.url, self._stop = run_in_thread(app)
        self.client = httpx.Client(base_url=self.url, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=10)

    def stop(self) -> None:
        self.client.close()
        if self._stop is not None:
            self._stop()
            self._stop = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @classmethod
    @contextlib.contextmanager
    def started(cls, state_dir: Path, knobs: dict[str, Any] | None = None) -> Iterator[SmsSandbox]:
        box = cls(state_dir, knobs)
        box.start()
        try:
            yield box
        finally:
            box.stop()

    @property
    def messages_path(self) -> str:
        return f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"

    def message_path(self, sid: str) -> str:
        return f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json"

    def send(
        self, to: str = "+66812345678", body: str = "Invoice INV-1", **extra: str
    ) -> httpx.Response:
        return self.client.post(
            self.messages_path, data={"To": to, "From": "Courier", "Body": body, **extra}
        )

    def configure(self, **knobs: Any) -> dict[str, Any]:
        response = httpx.post(f"{self.url}/_sandbox/config", json=knobs)
        response.raise_for_status()
        return response.json()

    def recorded(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/_sandbox/messages").json()["messages"]

    def fetch(self, sid: str) -> dict[str, Any]:
        response = self.client.get(self.message_path(sid))
        response.raise_for_status()
        return response.json()

    def callback_log(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/_sandbox/callbacks").json()["callbacks"]

    def inbound(self, from_number: str, body: str, **extra: str) -> httpx.Response:
        """A handset's reply (``STOP``, ``START``, ...) to the sandbox."""
        return httpx.post(
            f"{self.url}/_sandbox/inbound", data={"From": from_number, "Body": body, **extra}
        )

    def opt_outs(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/_sandbox/opt-outs").json()["opt_outs"]


@dataclass(frozen=True)
class ReceivedCallback:
    url: str  # as the receiver saw it: what Twilio signs
    form: dict[str, str]
    headers: dict[str, str]
    signature_valid: bool
    at: float


class CallbackReceiver:
    """A tiny status-callback receiver on loopback: records each POST and checks its
    ``X-Twilio-Signature`` against ``auth_token``; answers ``status_code`` (settable)."""

    def __init__(self, auth_token: str = AUTH_TOKEN, status_code: int = 204) -> None:
        self.auth_token = auth_token
        self.status_code = status_code
        self.received: list[ReceivedCallback] = []
        self._lock = threading.Lock()
        self.base_url = ""
        self._stop: Any = None

    async def _hook(self, request: Request) -> Response:
        pairs = parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True)
        url = str(request.url)
        signature = request.headers.get("x-twilio-signature", "")
        item = ReceivedCallback(
            url=url,
            form=dict(pairs),
            headers=dict(request.headers),
            signature_valid=validate_twilio_signature(self.auth_token, url, pairs, signature),
            at=time.time(),
        )
        with self._lock:
            self.received.append(item)
        return Response(status_code=self.status_code)

    def start(self, port: int = 0) -> None:
        app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])
        self.base_url, self._stop = run_in_thread(app, port=port)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None

    @classmethod
    @contextlib.contextmanager
    def started(cls, **kwargs: Any) -> Iterator[CallbackReceiver]:
        receiver = cls(**kwargs)
        receiver.start()
        try:
            yield receiver
        finally:
            receiver.stop()

    def url(self, query: str = "") -> str:
        return f"{self.base_url}/hook" + (f"?{query}" if query else "")

    def snapshot(self) -> list[ReceivedCallback]:
        with self._lock:
            return list(self.received)

    def statuses(self, sid: str) -> list[str]:
        return [c.form["MessageStatus"] for c in self.snapshot() if c.form["MessageSid"] == sid]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedCallback]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.snapshot()
            if len(got) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(f"expected {count} callbacks, got {len(self.snapshot())}")


@contextlib.contextmanager
def docstore(state_dir: Path, knobs: dict[str, Any] | None = None) -> Iterator[str]:
    url, stop = run_in_thread(create_docstore_app(state_dir, DOCS_TOKEN, knobs))
    try:
        yield url
    finally:
        stop()


@contextlib.contextmanager
def invoice_api(invoices_path: Path, **kwargs: Any) -> Iterator[str]:
    url, stop = run_in_thread(create_invoice_api_app(invoices_path, **kwargs))
    try:
        yield url
    finally:
        stop()


def write_jsonl(path: Path, records: list[dict[str, Any]], mode: str = "w") -> None:
    with path.open(mode, encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def openapi_schema(spec: dict[str, Any], node: dict[str, Any] | str) -> dict[str, Any]:
    """An OpenAPI 3.0 schema (or ``components/schemas/<name>``) as plain JSON Schema.

    Refs are inlined, ``nullable`` becomes a ``null`` type, formats are dropped.
    """

    def convert(node: Any) -> Any:
        if isinstance(node, list):
            return [convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return convert(spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]])
        out = {
            key: convert(value)
            for key, value in node.items()
            if key not in ("nullable", "x-twilio", "format")
        }
        if node.get("nullable"):
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
            if "type" in out:
                out["type"] = [out["type"], "null"]
        return out

    return convert(spec["components"]["schemas"][node] if isinstance(node, str) else node)


@dataclass(frozen=True)
class SmtpSandbox:
    host: str
    port: int
    url: str  # the inspection API

    def messages(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/_sandbox/messages", timeout=10).json()["messages"]

    def raw(self, n: int) -> bytes:
        return httpx.get(f"{self.url}/_sandbox/messages/{n}/raw", timeout=10).content

    def configure(self, **knobs: Any) -> dict[str, Any]:
        response = httpx.post(f"{self.url}/_sandbox/config", json=knobs, timeout=10)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        httpx.post(f"{self.url}/_sandbox/reset", timeout=10).raise_for_status()

    def outbound(self) -> list[dict[str, Any]]:
        """The mail the sandbox generated (bounces, time-stamp replies), in order."""
        return httpx.get(f"{self.url}/_sandbox/outbound", timeout=10).json()["outbound"]

    def outbound_raw(self, n: int) -> bytes:
        response = httpx.get(f"{self.url}/_sandbox/outbound/{n}/raw", timeout=10)
        response.raise_for_status()
        return response.content

    def redeliver(self, n: int) -> httpx.Response:
        """Post outbound message ``n`` to ``inbound_url`` again; answers once it is done."""
        return httpx.post(f"{self.url}/_sandbox/outbound/{n}/redeliver", timeout=30)

    def wait_for_outbound(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The outbound list once it has ``count`` entries and no post is still under way."""
        deadline = time.monotonic() + timeout
        while True:
            entries = self.outbound()
            if len(entries) >= count and not any(entry["pending"] for entry in entries):
                return entries
            if time.monotonic() >= deadline:
                raise AssertionError(f"expected {count} settled outbound, got {entries}")
            time.sleep(0.02)


@contextlib.contextmanager
def smtp_sandbox(
    state_dir: Path | None = None,
    username: str | None = None,
    password: str | None = None,
    knobs: dict[str, Any] | None = None,
) -> Iterator[SmtpSandbox]:
    """The sandbox SMTP server on a free loopback port (its own event loop, in a thread)
    and its inspection API; ``knobs`` are its initial (and reset) knob values."""
    import asyncio

    from sandbox._common import Knobs
    from sandbox.smtp_server import (
        KNOBS,
        Mailbox,
        SandboxHandler,
        create_smtp_inspection_app,
        make_smtp_factory,
    )

    handler = SandboxHandler(Mailbox(state_dir), Knobs(KNOBS, knobs))
    loop = asyncio.new_event_loop()
    # The server is made on the loop's own thread: the caller's thread may already run an
    # event loop (a sync Playwright browser does), where run_until_complete would fail.
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> asyncio.Server:
        factory = make_smtp_factory(handler, username, password)
        return await loop.create_server(factory, "127.0.0.1", 0)

    server = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    port = server.sockets[0].getsockname()[1]
    url, stop = run_in_thread(create_smtp_inspection_app(handler))
    try:
        yield SmtpSandbox("127.0.0.1", port, url)
    finally:
        stop()

        async def shut_down() -> None:  # no client task left pending when the loop stops
            server.close()
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shut_down(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
