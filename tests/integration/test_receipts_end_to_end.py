"""The sandbox gateway's signed callbacks reach Courier's receiver and move the ledger:
late failures show with their error code, provider prices land, and the reconciliation
view shows a price the provider charged differently."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx

from courier.adapters.sms import TwilioSmsGateway
from courier.ledger import Ledger
from courier.receipts import STATUS_PATH, create_receipts_app, poll_for_receipts
from courier.retry import RetryPolicy
from courier.sending import Sender
from sandbox.server import run_in_thread
from tests.support.factories import on_issue_intents
from tests.support.sandbox_fixtures import ACCOUNT_SID, AUTH_TOKEN, SmsSandbox


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_callbacks_update_status_error_codes_and_prices(tmp_path):
    ledger = Ledger(tmp_path / "ledger.duckdb")
    ledger.migrate()
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    _, stop_receiver = run_in_thread(create_receipts_app(ledger, AUTH_TOKEN, public), port=port)
    knobs = {"seed": 3, "delivery_delay_s": 0.2, "late_failure_rate": 0.4, "price_multiplier": 1.5}
    try:
        with SmsSandbox.started(tmp_path / "sms", knobs=knobs) as sms:

            async def go():
                async with httpx.AsyncClient() as client:
                    gateway = TwilioSmsGateway(
                        client,
                        sms.url,
                        ACCOUNT_SID,
                        AUTH_TOKEN,
                        "Courier",
                        status_callback_url=public + STATUS_PATH,
                    )
                    return await Sender(gateway, ledger, RetryPolicy()).send_all(
                        on_issue_intents(10, "R")
                    )

            assert asyncio.run(go()).outcomes["accepted"] == 10
            deadline = time.monotonic() + 20
            final = ("delivered", "undelivered", "failed")
            while time.monotonic() < deadline:
                with ledger.connect(read_only=True) as con:
                    states = con.execute("SELECT provider_status FROM messages").fetchall()
                if all(s[0] in final for s in states):
                    break
                time.sleep(0.2)
            time.sleep(0.3)  # prices are set when a message is sent
            gateway_view = {m["sid"]: m for m in sms.recorded()}

            # Callbacks carry no price (Twilio's don't either): polling brings it.
            async def poll():
                async with httpx.AsyncClient() as client:
                    gateway = TwilioSmsGateway(client, sms.url, ACCOUNT_SID, AUTH_TOKEN, "C")
                    return await poll_for_receipts(gateway, ledger, older_than_s=0)

            polled = asyncio.run(poll())
            assert sum(polled.values()) == 10
    finally:
        stop_receiver()

    with ledger.connect(read_only=True) as con:
        ours = con.execute(
            "SELECT provider_sid, provider_status, provider_error_code FROM messages"
        ).fetchall()
        reconciliation = con.execute(
            "SELECT state, count(*) FROM charge_reconciliation GROUP BY 1"
        ).fetchall()
    assert len(ours) == 10
    for sid, status, code in ours:
        theirs = gateway_view[sid]
        assert status == theirs["status"], (sid, status, theirs["status"])
        assert code == (None if theirs["error_code"] is None else str(theirs["error_code"]))
    late = [row for row in ours if row[1] != "delivered"]
    assert late and all(row[2] in {"30003", "30005", "30006"} for row in late)
    # The provider charged 1.5x the agreed price for every message it charged at all.
    charged = sum(1 for m in gateway_view.values() if m["price"] is not None)
    assert dict(reconciliation).get("differs") == charged
