"""The Twilio adapter sorts every answer into the error hierarchy (fake at the transport)."""

from __future__ import annotations

import asyncio
from datetime import date

import httpx
import pytest

from courier.adapters.errors import AmbiguousError, PermanentError, RateLimited, TransientError
from courier.adapters.sms import TwilioSmsGateway

SID = "AC" + "1" * 32


def gateway(handler) -> TwilioSmsGateway:
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return TwilioSmsGateway(client, "http://gw.test", SID, "token", "Courier")


def message_json(**overrides):
    base = {
        "sid": "SM" + "a" * 32,
        "to": "+66812345678",
        "body": "hi",
        "status": "queued",
        "num_segments": "1",
        "price": None,
        "error_code": None,
    }
    return {**base, **overrides}


def run(coro):
    return asyncio.run(coro)


def test_send_posts_form_with_basic_auth_and_parses_the_message():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["url"] = str(request.url)
        seen["auth"] = request.headers["Authorization"]
        seen["body"] = request.content.decode()
        seen["type"] = request.headers["Content-Type"]
        return httpx.Response(201, json=message_json(num_segments="2", price="-0.06"))

    sent = run(gateway(handler).send("+66812345678", "hello world"))
    assert seen["url"] == f"http://gw.test/2010-04-01/Accounts/{SID}/Messages.json"
    assert seen["auth"].startswith("Basic ")
    assert seen["type"] == "application/x-www-form-urlencoded"
    assert "To=%2B66812345678" in seen["body"] and "From=Courier" in seen["body"]
    assert sent.num_segments == 2
    assert str(sent.price) == "0.06"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (21211, "Invalid telephone number"),
        (21614, "Not a mobile number"),
        (21610, "Buyer opted out (STOP)"),
    ],
)
def test_twilio_refusals_are_permanent_with_a_readable_reason(code, reason):
    def handler(request):
        return httpx.Response(
            400, json={"code": code, "message": "x", "more_info": "", "status": 400}
        )

    with pytest.raises(PermanentError) as caught:
        run(gateway(handler).send("+66236578901", "x"))
    assert caught.value.reason == reason
    assert caught.value.code == str(code)


def test_429_is_rate_limited_with_retry_after():
    def handler(request):
        return httpx.Response(429, headers={"Retry-After": "3"}, json={"code": 20429})

    with pytest.raises(RateLimited) as caught:
        run(gateway(handler).send("+66812345678", "x"))
    assert caught.value.retry_after_s == 3.0


def test_5xx_on_send_is_ambiguous_but_on_lookup_transient():
    # The gateway may have accepted the message before failing: only a look-up can tell.
    with pytest.raises(AmbiguousError):
        run(gateway(lambda r: httpx.Response(504, json={})).send("+66812345678", "x"))
    with pytest.raises(TransientError):
        run(gateway(lambda r: httpx.Response(503, json={})).fetch("SM" + "a" * 32))


def test_connect_error_is_transient_but_read_timeout_is_ambiguous():
    def refuse(request):
        raise httpx.ConnectError("refused", request=request)

    def lose(request):
        raise httpx.ReadTimeout("no answer", request=request)

    with pytest.raises(TransientError):
        run(gateway(refuse).send("+66812345678", "x"))
    with pytest.raises(AmbiguousError):
        run(gateway(lose).send("+66812345678", "x"))


def test_find_sent_walks_pages_and_matches_the_exact_body():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("Page") == "1":
            return httpx.Response(
                200,
                json={
                    "messages": [message_json(body="the one", sid="SM" + "b" * 32)],
                    "next_page_uri": None,
                },
            )
        assert request.url.params["To"] == "+66812345678"
        assert request.url.params["DateSent"] == "2026-11-21T00:00:00Z"
        return httpx.Response(
            200,
            json={
                "messages": [message_json(body="another")],
                "next_page_uri": f"/2010-04-01/Accounts/{SID}/Messages.json?Page=1",
            },
        )

    found = run(gateway(handler).find_sent("+66812345678", date(2026, 11, 21), "the one"))
    assert found is not None and found.sid == "SM" + "b" * 32
    assert run(gateway(handler).find_sent("+66812345678", date(2026, 11, 21), "nope")) is None
