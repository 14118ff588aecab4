"""Signed webhooks move delivery status forward and record STOP replies (real ledger, loopback)."""

from __future__ import annotations

import socket
import time
from decimal import Decimal

import httpx
import pytest

from courier.ledger import Ledger
from courier.receipts import INBOUND_PATH, STATUS_PATH, create_receipts_app, twilio_signature
from sandbox.server import run_in_thread

TOKEN = "receipts-test-token"
SID = "SM" + "c" * 32


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger(tmp_path / "ledger.duckdb")
    ledger.migrate()
    ledger.claim_intent(
        {
            "idempotency_key": "INV-1:on_issue",
            "invoice_number": "INV-1",
            "purpose": "on_issue",
            "requested_by": "t",
            "to_e164": "+66812345678",
            "destination_country": "TH",
            "body": "b",
            "encoding": "GSM-7",
            "segments": 2,
            "unit_price": Decimal("0.03"),
            "amount": Decimal("0.06"),
            "currency": "USD",
        }
    )
    ledger.record_accepted(
        "INV-1:on_issue",
        SID,
        "queued",
        {
            "invoice_number": "INV-1",
            "destination_country": "TH",
            "segments": 2,
            "unit_price": Decimal("0.03"),
            "amount": Decimal("0.06"),
            "currency": "USD",
        },
        1,
    )
    return ledger


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def receiver(ledger):
    # The public URL is what the gateway signs; here it is the loopback address itself.
    port = free_port()
    url, stop = run_in_thread(
        create_receipts_app(ledger, TOKEN, f"http://127.0.0.1:{port}"), port=port
    )
    yield url
    stop()


def post(url: str, path: str, form: dict[str, str], token: str = TOKEN) -> httpx.Response:
    signature = twilio_signature(token, url + path, form)
    return httpx.post(url + path, data=form, headers={"X-Twilio-Signature": signature})


def status_of(ledger: Ledger) -> tuple:
    with ledger.connect() as con:
        return con.execute(
            "SELECT m.provider_status, m.provider_error_code, c.provider_price "
            "FROM messages m JOIN sms_charges c USING (idempotency_key)"
        ).fetchall()[0]


def test_signed_callbacks_move_forward_never_back(receiver, ledger):
    assert (
        post(receiver, STATUS_PATH, {"MessageSid": SID, "MessageStatus": "sent"}).status_code == 200
    )
    assert (
        post(
            receiver,
            STATUS_PATH,
            {
                "MessageSid": SID,
                "MessageStatus": "undelivered",
                "ErrorCode": "30003",
                "Price": "-0.06",
            },
        ).status_code
        == 200
    )
    # A late "sent" arriving after the final status must not move it back.
    post(receiver, STATUS_PATH, {"MessageSid": SID, "MessageStatus": "sent"})
    assert status_of(ledger) == ("undelivered", "30003", Decimal("0.060000"))
    with ledger.connect() as con:
        events = con.execute("SELECT count(*) FROM delivery_events").fetchall()[0][0]
    assert events == 3


def test_bad_signatures_are_refused_and_change_nothing(receiver, ledger):
    form = {"MessageSid": SID, "MessageStatus": "delivered"}
    response = post(receiver, STATUS_PATH, form, token="not-the-token")
    assert response.status_code == 403
    unsigned = httpx.post(receiver + STATUS_PATH, data=form)
    assert unsigned.status_code == 403
    assert status_of(ledger)[0] == "queued"


def test_stop_and_start_replies(receiver, ledger):
    assert (
        post(receiver, INBOUND_PATH, {"From": "+66812345678", "Body": " stop "}).status_code == 200
    )
    assert ledger.opted_out() == {"+66812345678"}
    post(receiver, INBOUND_PATH, {"From": "+66812345678", "Body": "START"})
    assert ledger.opted_out() == set()


def test_a_receipt_reaches_the_dashboard_snapshot(ledger):
    """As ``courier receiver`` wires it: each write is followed, within the publisher's
    quiet period, by a new snapshot that shows it; a refused webhook publishes nothing."""
    from courier.snapshot import ThrottledPublisher, read_snapshot, snapshot_version

    publisher = ThrottledPublisher(ledger, min_interval_s=0.2)
    port = free_port()
    url, stop = run_in_thread(
        create_receipts_app(ledger, TOKEN, f"http://127.0.0.1:{port}", on_write=publisher.wrote),
        port=port,
    )
    try:
        refused = post(url, STATUS_PATH, {"MessageSid": SID, "MessageStatus": "delivered"}, "x")
        assert refused.status_code == 403
        time.sleep(0.5)
        assert snapshot_version(ledger.path) == (0, 0, 0)  # nothing written, nothing published
        delivered = {"MessageSid": SID, "MessageStatus": "delivered", "Price": "-0.06"}
        assert post(url, STATUS_PATH, delivered).status_code == 200
        deadline = time.monotonic() + 10
        shown = None
        while time.monotonic() < deadline:
            charges = read_snapshot(ledger.path, "charges", exact=True)
            shown = charges["provider_price"].tolist() if len(charges) else None
            if shown == [Decimal("0.060000")]:
                break
            time.sleep(0.1)
        assert shown == [Decimal("0.060000")]  # the provider's price, as the callback said
    finally:
        stop()
        publisher.close()
