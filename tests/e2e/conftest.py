"""End-to-end fixtures: one Prefect test harness per session; sandboxes on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prefect.testing.utilities import prefect_test_harness

from courier.sample_data import generate_invoices, write_jsonl
from tests.support.sandbox_fixtures import ACCOUNT_SID, AUTH_TOKEN, DOCS_TOKEN, SmsSandbox
from tests.support.sandbox_fixtures import docstore as docstore_sandbox
from tests.support.sandbox_fixtures import invoice_api as invoice_api_sandbox

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", autouse=True)
def prefect_harness() -> Iterator[None]:
    # ~10 s to start: once per session, never per test.
    with prefect_test_harness(server_startup_timeout=120):
        yield


@dataclass
class Stack:
    ledger_path: Path
    invoices_path: Path
    sms: SmsSandbox
    docstore_url: str
    erp_url: str

    def accepted_messages(self) -> list[dict]:
        return self.sms.recorded()


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    invoices_path = tmp_path / "invoices.jsonl"
    write_jsonl(generate_invoices(count=60), invoices_path)
    with (
        SmsSandbox.started(tmp_path / "sms", knobs={"delivery_delay_s": 0.05}) as sms,
        docstore_sandbox(tmp_path / "docs") as docs_url,
        invoice_api_sandbox(invoices_path) as erp_url,
    ):
        ledger_path = tmp_path / "ledger.duckdb"
        env = {
            "COURIER_LEDGER_PATH": str(ledger_path),
            "COURIER_PRICING_PATH": str(REPO / "data/pricing.csv"),
            "COURIER_INVOICE_SOURCE": erp_url,
            "COURIER_SMS_BASE_URL": sms.url,
            "COURIER_SMS_ACCOUNT_SID": ACCOUNT_SID,
            "COURIER_SMS_AUTH_TOKEN": AUTH_TOKEN,
            "COURIER_DOCSTORE_URL": docs_url,
            "COURIER_DOCSTORE_TOKEN": DOCS_TOKEN,
            "COURIER_BATCH_SIZE": "25",
            "COURIER_SENDING_HOURS": "off",
            "COURIER_RECEIPT_POLL_AFTER_S": "0",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.chdir(tmp_path)  # no stray .env from the checkout
        yield Stack(ledger_path, invoices_path, sms, docs_url, erp_url)


def download(url: str) -> httpx.Response:
    return httpx.get(url, timeout=10)
