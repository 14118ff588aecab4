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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sandbox.docstore import create_docstore_app
from sandbox.invoice_api import create_invoice_api_app
from sandbox.server import run_in_thread
from sandbox.sms_gateway import create_sms_app

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
