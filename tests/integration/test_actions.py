"""The dashboard's writes (courier.actions) against the sandbox gateway and document store:
edit a number then send, Send All charges what its preview said, a request sends once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from courier import actions, jobs
from courier.invoice_io import invoice_to_dict
from courier.ledger import Ledger
from courier.messages import count_segments
from courier.pulling import invoice_rows, parse_records
from courier.sample_data import generate_invoices
from courier.settings import load_settings
from courier.wiring import Services, build_services
from tests.support.sandbox_fixtures import ACCOUNT_SID, AUTH_TOKEN, DOCS_TOKEN, SmsSandbox
from tests.support.sandbox_fixtures import docstore as docstore_sandbox

REPO = Path(__file__).resolve().parents[2]
BY = "finance@example.com"


@dataclass
class Stack:
    services: Services
    sms: SmsSandbox

    @property
    def ledger(self) -> Ledger:
        return self.services.ledger

    def rows(self, sql: str, *params: object) -> list[tuple]:
        with self.ledger.connect() as con:
            return con.execute(sql, list(params)).fetchall()


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.chdir(tmp_path)  # no stray .env from the checkout
    with (
        SmsSandbox.started(tmp_path / "sms") as sms,
        docstore_sandbox(tmp_path / "docs") as docs_url,
    ):
        settings = load_settings(
            ledger_path=tmp_path / "ledger.duckdb",
            pricing_path=REPO / "data/pricing.csv",
            sms_base_url=sms.url,
            sms_account_sid=ACCOUNT_SID,
            sms_auth_token=AUTH_TOKEN,
            docstore_url=docs_url,
            docstore_token=DOCS_TOKEN,
            sending_hours="off",
        )
        services = build_services(settings)
        batch = parse_records([invoice_to_dict(i) for i in generate_invoices(count=24)])
        services.ledger.insert_invoices(invoice_rows(batch.invoices, "test", datetime.now(UTC)))
        jobs.publish(services, jobs.documents_due(services))
        try:
            yield Stack(services, sms)
        finally:
            services.close()


def first(stack: Stack, where: str) -> str:
    return stack.rows(f"SELECT invoice_number FROM invoice_status WHERE {where} ORDER BY 1")[0][0]


def test_edit_phone_then_send_texts_the_new_number_once_and_charges_it(stack):
    number = first(stack, "phone_status = 'invalid' AND buyer_country = 'TH'")
    old_raw = stack.rows("SELECT phone_raw FROM invoices WHERE invoice_number = ?", number)[0][0]

    refused = actions.edit_phone(stack.ledger, number, "call office", BY)
    assert refused == {
        "updated": False,
        "invoice_number": number,
        "phone_status": "invalid",
        "reason": "Invalid telephone number",
    }
    landline = actions.edit_phone(stack.ledger, number, "02-123-4567", BY)
    assert landline["reason"] == "Not a mobile number"
    assert stack.rows("SELECT count(*) FROM phone_edits") == [(0,)]

    edited = actions.edit_phone(stack.ledger, number, "081-234-5678", BY)
    assert edited["updated"] and edited["phone_masked"] == "+66 ••• ••• 678"
    edits = stack.rows("SELECT invoice_number, old_raw, new_raw, edited_by FROM phone_edits")
    assert edits == [(number, old_raw, "081-234-5678", BY)]
    status = stack.rows(
        "SELECT phone_status, phone_masked, reason FROM invoice_status WHERE invoice_number = ?",
        number,
    )
    assert status == [("ok", "+66 ••• ••• 678", "")]
    record = json.loads(
        stack.rows("SELECT record_json FROM invoices WHERE invoice_number = ?", number)[0][0]
    )
    assert record["buyer"]["phone"] == "081-234-5678"  # the next PDF prints the new number

    result = actions.send_sms(stack.services, [number], "press-1", BY, run_id="run-1")
    assert result["accepted"] == 1
    sent = stack.sms.recorded()
    assert [m["to"] for m in sent] == ["+66812345678"]
    charges = stack.rows(
        "SELECT invoice_number, destination_country, segments, amount, requested_by, purpose "
        "FROM charges"
    )
    assert len(charges) == 1
    invoice, country, segments, amount, who, purpose = charges[0]
    assert (invoice, country, who, purpose) == (number, "TH", BY, "manual:press-1")
    assert segments == count_segments(sent[0]["body"]).segments
    assert amount == Decimal("0.03") * segments
    assert Decimal(result["charged"]) == amount


@pytest.mark.parametrize(
    "template",
    [None, "{seller}: ใบแจ้งหนี้ {number} ฿{amount} {currency} — {link}"],
    ids=["default-text", "own-thai-template"],
)
def test_send_all_charges_exactly_what_its_preview_said(stack, template):
    numbers = [r[0] for r in stack.rows("SELECT invoice_number FROM invoices ORDER BY 1")]
    stack.ledger.add_opt_out(
        stack.rows(
            "SELECT phone_e164 FROM invoices WHERE phone_status = 'ok' ORDER BY invoice_number"
        )[0][0],
        "manual",
    )
    preview = actions.preview(
        stack.ledger,
        stack.services.prices,
        stack.services.settings,
        numbers,
        "all-1",
        BY,
        template=template,
    )
    skipped = preview.skipped_counts
    phones = dict(stack.rows("SELECT phone_status, count(*) FROM invoices GROUP BY 1"))
    assert skipped.get("No telephone number", 0) == phones.get("missing", 0)
    assert skipped.get("Invalid telephone number", 0) == phones.get("invalid", 0)
    assert skipped.get("Not a mobile number", 0) == phones.get("not_mobile", 0)
    assert skipped["Buyer opted out (STOP)"] == 1
    assert len(preview.recipients) == phones["ok"] - 1 > 0
    assert preview.selected == len(numbers)

    result = actions.send_sms(
        stack.services, preview.recipients, "all-1", BY, run_id="run-all", template=template
    )

    assert result["accepted"] == len(preview.recipients)
    charged = stack.rows(
        "SELECT destination_country, count(*), sum(segments), sum(amount) FROM charges "
        "WHERE purpose = 'manual:all-1' GROUP BY 1 ORDER BY 1"
    )
    expected = [
        (row.country, row.messages, row.segments, row.amount)
        for row in preview.by_country.sort_values("country").itertuples()
    ]
    assert charged == expected
    total = stack.rows("SELECT sum(amount) FROM charges WHERE purpose = 'manual:all-1'")[0][0]
    assert total == preview.total == Decimal(result["charged"])
    # The links in the SMS are fresh ones, and just as long as the ones the preview measured.
    bodies = {m["body"] for m in stack.sms.recorded()}
    assert {i.body for i in preview.intents}.isdisjoint(bodies)
    assert sorted(len(b) for b in bodies) == sorted(len(i.body) for i in preview.intents)
    if template:
        assert all("ใบแจ้งหนี้" in b for b in bodies)

    again = actions.preview(
        stack.ledger, stack.services.prices, stack.services.settings, numbers, "all-2", BY
    )
    assert again.recipients == []
    assert again.skipped_counts["Already sent today"] == len(preview.recipients)


def test_the_same_request_twice_sends_once(stack):
    numbers = [
        r[0]
        for r in stack.rows(
            "SELECT invoice_number FROM invoice_status WHERE phone_status = 'ok' ORDER BY 1 LIMIT 3"
        )
    ]
    first_press = actions.send_sms(stack.services, numbers, "click-1", BY, run_id="r1")
    double_click = actions.send_sms(stack.services, numbers, "click-1", BY, run_id="r2")
    assert first_press["accepted"] == 3
    assert double_click.get("accepted", 0) == 0
    assert double_click["already_requested"] == 3 and double_click["not_sendable"] == []
    assert len(stack.sms.recorded()) == 3
    assert stack.rows("SELECT count(*) FROM charges") == [(3,)]

    next_press = actions.send_sms(stack.services, numbers[:1], "click-2", BY, run_id="r3")
    assert next_press["accepted"] == 1  # a new press is a new, charged SMS
    assert len(stack.sms.recorded()) == 4


def test_batches_never_exceed_the_run_budget_together(stack):
    numbers = [
        r[0]
        for r in stack.rows(
            "SELECT invoice_number FROM invoice_status WHERE phone_status = 'ok' ORDER BY 1 LIMIT 4"
        )
    ]
    quote = actions.preview(
        stack.ledger, stack.services.prices, stack.services.settings, numbers, "q", BY
    )
    # Each batch of 2 fits the budget on its own; the 4 together do not.
    stack.services.settings.run_budget = quote.total - Decimal("0.000001")
    result = actions.send_sms(stack.services, numbers, "big", BY, run_id="r", batch_size=2)
    assert "Run budget" in result["refused"]
    assert stack.sms.recorded() == []

    stack.services.settings.run_budget = None
    sent = actions.send_sms(stack.services, numbers, "big", BY, run_id="r", batch_size=2)
    assert sent["accepted"] == 4
    assert stack.rows("SELECT count(DISTINCT run_id) FROM charges") == [(1,)]
