"""The sandbox SMS gateway speaks Twilio's Messages API over real loopback HTTP."""

from __future__ import annotations

import email.utils
import json
import os
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.server import run_in_thread
from tests.support.sandbox_fixtures import ACCOUNT_SID, TWILIO_SPEC, SmsSandbox, openapi_schema

SID_PATTERN = re.compile(r"^SM[0-9a-f]{32}$")
STATUSES = {
    "queued", "sending", "sent", "failed", "delivered", "undelivered", "receiving",
    "received", "accepted", "scheduled", "read", "partially_delivered", "canceled",
}  # fmt: skip
THAI_MOBILE = "+66812345678"


@pytest.fixture
def sms(tmp_path):
    with SmsSandbox.started(tmp_path / "sms") as box:
        yield box


@pytest.fixture(scope="module")
def shared_sms(tmp_path_factory):
    """One gateway for tests that only read their own answers (saves a start per case)."""
    with SmsSandbox.started(tmp_path_factory.mktemp("shared-sms")) as box:
        yield box


@pytest.fixture(scope="module")
def twilio_spec():
    if not TWILIO_SPEC.is_file():
        pytest.skip(f"Twilio OpenAPI description not found at {TWILIO_SPEC}")
    return json.loads(TWILIO_SPEC.read_text())


def today_utc() -> str:
    return datetime.now(UTC).date().isoformat()


def wait_for(predicate, timeout=5.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


# -- create ----------------------------------------------------------------------------


def test_create_answers_201_with_a_full_twilio_message(sms):
    response = sms.send(THAI_MOBILE, "Your invoice INV-1: https://docs.example/d/abc")
    assert response.status_code == 201
    message = response.json()
    assert SID_PATTERN.match(message["sid"])
    assert message["account_sid"] == ACCOUNT_SID
    assert message["to"] == THAI_MOBILE
    assert message["from"] == "Courier"
    assert message["body"] == "Your invoice INV-1: https://docs.example/d/abc"
    assert message["status"] == "queued"
    assert message["status"] in STATUSES
    assert message["num_segments"] == "1"
    assert isinstance(message["num_segments"], str)
    assert message["num_media"] == "0"
    assert message["price"] is None
    assert message["price_unit"] == "USD"
    assert message["direction"] == "outbound-api"
    assert message["api_version"] == "2010-04-01"
    assert message["error_code"] is None
    assert message["error_message"] is None
    assert message["messaging_service_sid"] is None
    for name in ("date_created", "date_updated", "date_sent"):
        assert re.match(r"^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$", message[name])
        parsed = email.utils.parsedate_to_datetime(message[name])
        assert abs(parsed - datetime.now(UTC)) < timedelta(minutes=1)
    base = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{message['sid']}"
    assert message["uri"] == f"{base}.json"
    assert message["subresource_uris"] == {"media": f"{base}/Media.json"}


def test_create_response_validates_against_twilio_openapi(sms, twilio_spec):
    jsonschema = pytest.importorskip("jsonschema")
    schema = openapi_schema(twilio_spec, "api.v2010.account.message")
    message = sms.send().json()
    jsonschema.validate(message, schema)
    assert set(message) <= set(schema["properties"])


def test_numbers_are_normalized_to_e164(sms):
    response = sms.send("+66 81 234 5678")
    assert response.status_code == 201
    assert response.json()["to"] == THAI_MOBILE


@pytest.mark.parametrize(
    ("to", "code", "message"),
    [
        ("+66236578901", 21211, "The 'To' number +66236578901 is not a valid phone number."),
        ("not-a-number", 21211, "The 'To' number not-a-number is not a valid phone number."),
        ("0812345678", 21211, "The 'To' number 0812345678 is not a valid phone number."),
        ("+6621234567", 21614, "'To' number is not a valid mobile number"),
    ],
)
def test_invalid_or_landline_to_is_rejected(sms, to, code, message):
    response = sms.send(to)
    assert response.status_code == 400
    assert response.json() == {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": 400,
    }
    assert sms.recorded() == []


def test_empty_body_is_21602(sms):
    response = sms.send(THAI_MOBILE, "")
    assert response.status_code == 400
    assert response.json()["code"] == 21602


def test_missing_to_is_21604(sms):
    response = sms.client.post(sms.messages_path, data={"From": "Courier", "Body": "hi"})
    assert response.status_code == 400
    assert response.json()["code"] == 21604


@pytest.mark.parametrize(
    "auth",
    [None, (ACCOUNT_SID, "wrong-token"), ("AC" + "1" * 32, "sandbox-test-token")],
    ids=["no-auth", "wrong-token", "wrong-account"],
)
def test_wrong_credentials_are_401_20003(sms, auth):
    response = httpx.post(
        sms.url + sms.messages_path,
        data={"To": THAI_MOBILE, "From": "Courier", "Body": "hi"},
        auth=auth,
    )
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == 20003
    assert body["status"] == 401
    assert body["more_info"] == "https://www.twilio.com/docs/errors/20003"
    assert sms.recorded() == []


def test_path_account_must_match_the_credentials(sms):
    other = "AC" + "2" * 32
    response = sms.client.get(f"/2010-04-01/Accounts/{other}/Messages.json")
    assert response.status_code == 401


# -- segments and price ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("a" * 160, "1"),
        ("a" * 161, "2"),
        ("a" * 306, "2"),
        ("a" * 307, "3"),
        ("€" * 80, "1"),  # extension chars count two septets
        ("€" * 81, "2"),
        ("[x]" * 32, "1"),  # 32 * 5 septets = 160
        ("[x]" * 32 + "a", "2"),
        ("ก" * 70, "1"),
        ("ก" * 71, "2"),  # Thai -> UCS-2: 70 single, 67 per part
        ("ก" * 134, "2"),
        ("ก" * 135, "3"),
        ("ใบแจ้งหนี้ " + "x" * 60, "2"),  # one Thai char makes the whole body UCS-2
        ("Price 100 ฿", "1"),
        ("😀" * 35, "1"),  # astral chars are two UTF-16 code units
        ("😀" * 36, "2"),
    ],
)
def test_num_segments_counted_per_encoding(shared_sms, body, segments):
    response = shared_sms.send(THAI_MOBILE, body)
    assert response.status_code == 201, response.text
    assert response.json()["num_segments"] == segments


@pytest.mark.parametrize(
    ("to", "body", "price"),
    [
        (THAI_MOBILE, "hello", "-0.03000"),
        (THAI_MOBILE, "ก" * 71, "-0.06000"),
        ("+966501234567", "hello", "-0.04000"),
        ("+201001234567", "a" * 161, "-0.10000"),
    ],
)
def test_lifecycle_reaches_delivered_and_price_is_set(tmp_path, to, body, price):
    with SmsSandbox.started(tmp_path / "sms", {"delivery_delay_s": 0.2}) as sms:
        created = sms.send(to, body).json()
        assert created["status"] == "queued"
        assert created["price"] is None
        path = sms.message_path(created["sid"])
        seen = set()

        def delivered():
            message = sms.client.get(path).json()
            seen.add(message["status"])
            return message if message["status"] == "delivered" else None

        message = wait_for(delivered, timeout=3, interval=0.02)
        assert message["price"] == price
        assert message["price_unit"] == "USD"
        assert message["error_code"] is None
        assert seen <= {"queued", "sent", "delivered"}


def test_sent_status_carries_the_price(tmp_path):
    with SmsSandbox.started(tmp_path / "sms", {"delivery_delay_s": 1.0}) as sms:
        created = sms.send().json()
        message = wait_for(
            lambda: (
                (m := sms.client.get(sms.message_path(created["sid"])).json())["status"] == "sent"
                and m
            )
        )
        assert message["price"] == "-0.03000"


def test_undelivered_rate_ends_in_undelivered_with_error(tmp_path):
    knobs = {"delivery_delay_s": 0.1, "undelivered_rate": 1.0}
    with SmsSandbox.started(tmp_path / "sms", knobs) as sms:
        sid = sms.send().json()["sid"]
        time.sleep(0.2)
        message = sms.client.get(sms.message_path(sid)).json()
        assert message["status"] == "undelivered"
        assert message["error_code"] == 30003
        assert message["price"] == "-0.03000"


# -- fetch and list ----------------------------------------------------------------------


def test_fetch_by_sid_and_404_for_unknown(sms):
    created = sms.send().json()
    fetched = sms.client.get(sms.message_path(created["sid"]))
    assert fetched.status_code == 200
    assert fetched.json()["sid"] == created["sid"]
    assert fetched.json()["body"] == created["body"]

    missing = sms.client.get(sms.message_path("SM" + "f" * 32))
    assert missing.status_code == 404
    assert missing.json()["code"] == 20404


def test_list_filters_by_to_and_date_sent(sms, twilio_spec):
    a1 = sms.send(THAI_MOBILE, "one").json()
    sms.send("+66898765432", "other").json()
    a2 = sms.send(THAI_MOBILE, "two").json()
    today = today_utc()
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()

    page = sms.client.get(sms.messages_path, params={"To": THAI_MOBILE, "DateSent": today})
    assert page.status_code == 200
    body = page.json()
    assert [m["sid"] for m in body["messages"]] == [a2["sid"], a1["sid"]]  # newest first
    assert body["page"] == 0
    assert body["page_size"] == 50
    assert body["start"] == 0
    assert body["end"] == 1
    assert body["next_page_uri"] is None
    assert body["previous_page_uri"] is None
    assert body["uri"].startswith(sms.messages_path + "?")
    assert body["first_page_uri"].startswith(sms.messages_path + "?")

    jsonschema = pytest.importorskip("jsonschema")
    path_item = twilio_spec["paths"]["/2010-04-01/Accounts/{AccountSid}/Messages.json"]
    schema = path_item["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    jsonschema.validate(body, openapi_schema(twilio_spec, schema))

    def sids(**params):
        response = sms.client.get(sms.messages_path, params={"To": THAI_MOBILE, **params})
        assert response.status_code == 200, response.text
        return {m["sid"] for m in response.json()["messages"]}

    assert sids(DateSent=yesterday) == set()
    assert sids(**{"DateSent>": yesterday}) == {a1["sid"], a2["sid"]}
    assert sids(**{"DateSent<": yesterday}) == set()
    assert sids(**{"DateSent<": today}) == {a1["sid"], a2["sid"]}
    assert len(sids()) == 2


def test_list_rejects_a_bad_date_filter(sms):
    response = sms.client.get(sms.messages_path, params={"DateSent": "yesterday-ish"})
    assert response.status_code == 400
    assert response.json()["code"] == 20001


def test_list_pages_cover_everything_once(sms):
    created = [sms.send(THAI_MOBILE, f"message {i}").json()["sid"] for i in range(7)]
    seen: list[str] = []
    pages = 0
    query = httpx.QueryParams({"To": THAI_MOBILE, "PageSize": 3})
    uri: str | None = f"{sms.messages_path}?{query}"
    while uri:
        body = sms.client.get(uri).json()
        assert body["page"] == pages
        assert body["start"] == pages * 3
        seen.extend(m["sid"] for m in body["messages"])
        uri = body["next_page_uri"]
        pages += 1
    assert pages == 3
    assert seen == list(reversed(created))

    # a previous_page_uri leads back to the page before
    first = sms.client.get(sms.messages_path, params={"PageSize": 3}).json()
    second = sms.client.get(first["next_page_uri"]).json()
    back = sms.client.get(second["previous_page_uri"]).json()
    assert [m["sid"] for m in back["messages"]] == [m["sid"] for m in first["messages"]]


# -- persistence -------------------------------------------------------------------------


def test_restart_on_the_same_state_dir_keeps_messages(tmp_path):
    box = SmsSandbox(tmp_path / "sms", {"delivery_delay_s": 0.1})
    box.start()
    try:
        sid = box.send().json()["sid"]
        box.restart()
        time.sleep(0.15)
        fetched = box.client.get(box.message_path(sid))
        assert fetched.status_code == 200
        assert fetched.json()["status"] == "delivered"
        assert [m["sid"] for m in box.recorded()] == [sid]
    finally:
        box.stop()


# -- knobs -------------------------------------------------------------------------------


def test_fail_rate_one_answers_5xx_and_records_nothing(tmp_path):
    with SmsSandbox.started(tmp_path / "sms", {"fail_rate": 1.0, "seed": 7}) as sms:
        for _ in range(5):
            response = sms.send()
            assert response.status_code in (500, 503)
            body = response.json()
            assert body["status"] == response.status_code
            assert body["code"] in (20500, 20503)
        assert sms.recorded() == []
        sms.configure(fail_rate=0.0)
        assert sms.send().status_code == 201
        assert len(sms.recorded()) == 1


def test_rate_limit_answers_429_with_retry_after(tmp_path):
    with SmsSandbox.started(tmp_path / "sms", {"rate_limit_per_s": 2}) as sms:
        statuses = [sms.send() for _ in range(3)]
        assert [r.status_code for r in statuses[:2]] == [201, 201]
        limited = statuses[2]
        assert limited.status_code == 429
        assert limited.json()["code"] == 20429
        retry_after = int(limited.headers["Retry-After"])
        assert retry_after >= 1
        assert len(sms.recorded()) == 2
        time.sleep(retry_after)
        assert sms.send().status_code == 201


def test_lost_response_is_accepted_but_answered_504(tmp_path):
    with SmsSandbox.started(tmp_path / "sms", {"lost_response_rate": 1.0}) as sms:
        response = sms.send(THAI_MOBILE, "ambiguous")
        assert response.status_code == 504
        # ...yet the message was accepted: a lookup finds it, a blind retry would double-send
        found = sms.client.get(
            sms.messages_path, params={"To": THAI_MOBILE, "DateSent": today_utc()}
        )
        assert [m["body"] for m in found.json()["messages"]] == ["ambiguous"]


def test_lost_response_delay_makes_the_client_time_out(tmp_path):
    knobs = {"lost_response_rate": 1.0, "lost_response_delay_ms": 800}
    with SmsSandbox.started(tmp_path / "sms", knobs) as sms:
        with pytest.raises(httpx.ReadTimeout):
            sms.client.post(
                sms.messages_path,
                data={"To": THAI_MOBILE, "From": "Courier", "Body": "slow"},
                timeout=0.2,
            )
        assert [m["body"] for m in sms.recorded()] == ["slow"]


def test_latency_knob_delays_answers(sms):
    sms.configure(latency_ms=300)
    started = time.monotonic()
    assert sms.send().status_code == 201
    assert time.monotonic() - started >= 0.3


def test_config_roundtrip_and_validation(sms):
    assert httpx.get(f"{sms.url}/_sandbox/config").json()["delivery_delay_s"] == 0.2
    updated = sms.configure(latency_ms=5, rate_limit_per_s=None, seed=3)
    assert updated["latency_ms"] == 5
    bad = httpx.post(f"{sms.url}/_sandbox/config", json={"fail_rate": 2})
    assert bad.status_code == 400
    unknown = httpx.post(f"{sms.url}/_sandbox/config", json={"no_such_knob": 1})
    assert unknown.status_code == 400
    assert httpx.get(f"{sms.url}/_sandbox/config").json()["latency_ms"] == 5


def test_reset_forgets_messages_and_knobs(tmp_path):
    with SmsSandbox.started(tmp_path / "sms", {"latency_ms": 1}) as sms:
        sms.send()
        sms.configure(latency_ms=50)
        assert httpx.post(f"{sms.url}/_sandbox/reset").status_code == 200
        assert sms.recorded() == []
        assert httpx.get(f"{sms.url}/_sandbox/config").json()["latency_ms"] == 1


def test_health_and_stats(sms):
    assert httpx.get(f"{sms.url}/_sandbox/health").json()["status"] == "ok"
    sms.send()
    sms.send("+66236578901")
    stats = httpx.get(f"{sms.url}/_sandbox/stats").json()
    assert stats["create_calls"] == 2
    assert stats["accepted"] == 1
    assert stats["rejected_invalid"] == 1


# -- status callbacks --------------------------------------------------------------------


def test_status_callback_receives_sent_and_delivered(tmp_path):
    received: list[dict[str, str]] = []
    lock = threading.Lock()

    async def hook(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        with lock:
            received.append(form)
        return Response(status_code=204)

    hook_url, stop_hook = run_in_thread(Starlette(routes=[Route("/hook", hook, methods=["POST"])]))
    try:
        with SmsSandbox.started(tmp_path / "sms", {"delivery_delay_s": 0.2}) as sms:
            created = sms.send(StatusCallback=f"{hook_url}/hook").json()
            wait_for(lambda: len(received) >= 2, timeout=5)
            assert [r["MessageStatus"] for r in received] == ["sent", "delivered"]
            assert {r["MessageSid"] for r in received} == {created["sid"]}
            assert received[0]["To"] == THAI_MOBILE
            assert received[0]["AccountSid"] == ACCOUNT_SID
            log = httpx.get(f"{sms.url}/_sandbox/callbacks").json()["callbacks"]
            assert [c["http_status"] for c in log] == [204, 204]
    finally:
        stop_hook()


def test_bad_status_callback_url_is_rejected(sms):
    response = sms.send(StatusCallback="not a url")
    assert response.status_code == 400
    assert response.json()["code"] == 21609


# -- python -m sandbox -------------------------------------------------------------------


def test_sandbox_command_serves_every_service_and_stops_on_sigterm(tmp_path):
    env = {**os.environ, "SANDBOX_AUTH_TOKEN": "cmd-token"}
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--state-dir", str(tmp_path / "state"),
         "--invoices", str(tmp_path / "invoices.jsonl"),
         "--sms-port", "0", "--docs-port", "0", "--erp-port", "0",
         "--mail-port", "0", "--smtp-port", "0"],
        stderr=subprocess.PIPE, text=True, env=env,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    try:
        urls: dict[str, str] = {}
        assert process.stderr is not None
        while len(urls) < 5:
            line = process.stderr.readline()
            assert line, "sandbox exited before announcing its services"
            found = re.search(
                r"sandbox: (sms gateway|document store|invoice api|mail inspection|smtp)\s+"
                r"((?:http|smtp)\S+)",
                line,
            )
            if found:
                urls[found.group(1)] = found.group(2)
        smtp_url = urls.pop("smtp")
        for url in urls.values():
            assert httpx.get(f"{url}/_sandbox/health").status_code == 200
        host, port = smtp_url.removeprefix("smtp://").rsplit(":", 1)
        with smtplib.SMTP(host, int(port), timeout=10) as client:
            client.sendmail("a@seller.example", ["b@buyer.example"], b"Subject: hi\r\n\r\nhi")
        kept = httpx.get(f"{urls['mail inspection']}/_sandbox/messages").json()["messages"]
        assert [m["subject"] for m in kept] == ["hi"]
        sms_url = urls["sms gateway"]
        created = httpx.post(
            f"{sms_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
            data={"To": THAI_MOBILE, "From": "Courier", "Body": "hi"},
            auth=(ACCOUNT_SID, "cmd-token"),
        )
        assert created.status_code == 201
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
