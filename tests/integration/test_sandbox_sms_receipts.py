"""The sandbox SMS gateway's delivery receipts and guard rails, over real loopback HTTP.

Signed status callbacks, late delivery failures, STOP opt-outs, the rate limiter's shape and
the price multiplier. The token bucket is also checked on a fake clock (exact boundaries).
"""

from __future__ import annotations

import random
import socket
import sqlite3
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest

from sandbox._common import TokenBucket
from sandbox.sms_gateway import (
    API_VERSION,
    ERROR_MESSAGES,
    twilio_signature,
    validate_twilio_signature,
)
from tests.support.sandbox_fixtures import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CallbackReceiver,
    SmsSandbox,
)

THAI_MOBILE = "+66812345678"
OTHER_MOBILE = "+66898765432"
CALLBACK_FIELDS = {
    "MessageSid", "SmsSid", "MessageStatus", "SmsStatus", "To", "From", "AccountSid",
    "ApiVersion",
}  # fmt: skip
FINAL = {"delivered", "undelivered", "failed"}


def wait_for(predicate, timeout=5.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


@pytest.fixture
def receiver():
    with CallbackReceiver.started() as box:
        yield box


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the signature algorithm ---------------------------------------------------------------

DOCS_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"


def docs_params(caller: str) -> dict[str, str]:
    return {
        "CallSid": "CA1234567890ABCDE",
        "Caller": caller,
        "Digits": "1234",
        "From": caller,
        "To": "+18005551212",
    }


def test_signature_matches_twilios_documented_example():
    # Twilio's security docs (www.twilio.com/docs/usage/security, "Validating Requests"):
    # auth token 12345, this URL, these POST fields -> GvWf1cFY/Q7PnoempGyD5oXAezc=
    params = docs_params("+14158675310")
    assert twilio_signature("12345", DOCS_URL, params) == "GvWf1cFY/Q7PnoempGyD5oXAezc="
    # the string signed: URL, then each name+value in name order, no separators
    # (https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+14158...)
    assert validate_twilio_signature("12345", DOCS_URL, params, "GvWf1cFY/Q7PnoempGyD5oXAezc=")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (DOCS_URL, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        (DOCS_URL.replace(".com", ".com:443"), "kvajT1Ptam85bY51eRf/AJRuM3w="),
        (
            DOCS_URL.replace("https", "http").replace(".com", ".com:80"),
            "0ZXoZLH/DfblKGATFgpif+LLRf4=",
        ),
        (
            DOCS_URL.replace("https", "http").replace(".com", ".com:1234"),
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
        ),
    ],
)
def test_signature_matches_twilio_python_request_validator_vectors(url, expected):
    # twilio/twilio-python tests/unit/test_request_validator.py (and twilio-php's docs):
    # the same example with Caller/From +14158675309; the URL is signed exactly as given.
    assert twilio_signature("12345", url, docs_params("+14158675309")) == expected


def test_signature_of_a_repeated_field_sorts_its_values():
    # twilio-python's duplicate-parameter vector: Digits=5678&Digits=1234 sign as 1234, 5678
    pairs = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    assert twilio_signature("12345", DOCS_URL, pairs) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def test_signature_ignores_field_order_but_not_content():
    params = docs_params("+14158675310")
    reordered = dict(reversed(list(params.items())))
    signature = twilio_signature("12345", DOCS_URL, params)
    assert twilio_signature("12345", DOCS_URL, reordered) == signature
    assert not validate_twilio_signature("12345", DOCS_URL, {**params, "Digits": "9"}, signature)
    assert not validate_twilio_signature("54321", DOCS_URL, params, signature)
    assert not validate_twilio_signature("12345", DOCS_URL + "&x=1", params, signature)


# -- signed status callbacks -----------------------------------------------------------------


def test_callbacks_for_sent_and_delivered_are_signed_like_twilio(tmp_path, receiver):
    callback_url = receiver.url("tenant=acme&batch=7")  # the query string is signed too
    with SmsSandbox.started(tmp_path / "sms", {"delivery_delay_s": 0.2}) as sms:
        created = sms.send(THAI_MOBILE, "Invoice INV-7", StatusCallback=callback_url).json()
        got = receiver.wait_for(2)
        assert [c.form["MessageStatus"] for c in got] == ["sent", "delivered"]
        for callback in got:
            assert callback.url == callback_url
            assert callback.signature_valid, callback.headers
            assert callback.headers["x-twilio-signature"] == twilio_signature(
                AUTH_TOKEN, callback_url, callback.form
            )
            assert set(callback.form) == CALLBACK_FIELDS  # no ErrorCode when delivered
            assert callback.form["MessageSid"] == callback.form["SmsSid"] == created["sid"]
            assert callback.form["SmsStatus"] == callback.form["MessageStatus"]
            assert callback.form["To"] == THAI_MOBILE
            assert callback.form["From"] == "Courier"
            assert callback.form["AccountSid"] == ACCOUNT_SID
            assert callback.form["ApiVersion"] == API_VERSION
            assert callback.headers["content-type"].startswith("application/x-www-form-urlencoded")
        tokens = [c.headers["i-twilio-idempotency-token"] for c in got]
        assert len(set(tokens)) == 2  # one per event

        log = sms.callback_log()
        assert [(c["message_status"], c["attempt"], c["http_status"]) for c in log] == [
            ("sent", 1, 204),
            ("delivered", 1, 204),
        ]
        assert [c["signature"] for c in log] == [c.headers["x-twilio-signature"] for c in got]
        assert [c["idempotency_token"] for c in log] == tokens
        assert log[1]["params"] == got[1].form
        time.sleep(0.2)
        assert len(receiver.snapshot()) == 2  # nothing for queued, nothing twice


def test_a_receiver_checking_with_another_token_rejects_the_signature(tmp_path):
    with (
        CallbackReceiver.started(auth_token="not-the-account-token") as receiver,
        SmsSandbox.started(tmp_path / "sms", {"delivery_delay_s": 0.05}) as sms,
    ):
        sms.send(StatusCallback=receiver.url())
        assert not any(c.signature_valid for c in receiver.wait_for(2))


def test_undelivered_callback_and_fetch_carry_the_error(tmp_path, receiver):
    knobs = {"delivery_delay_s": 0.1, "late_failure_rate": 1.0, "late_failure_codes": [30005]}
    with SmsSandbox.started(tmp_path / "sms", knobs) as sms:
        sid = sms.send(StatusCallback=receiver.url()).json()["sid"]
        got = receiver.wait_for(2)
        assert [c.form["MessageStatus"] for c in got] == ["sent", "undelivered"]
        assert "ErrorCode" not in got[0].form
        assert got[1].form["ErrorCode"] == "30005"
        assert set(got[1].form) == CALLBACK_FIELDS | {"ErrorCode"}
        assert all(c.signature_valid for c in got)
        message = sms.fetch(sid)
        assert message["status"] == "undelivered"
        assert message["error_code"] == 30005
        assert message["error_message"] == "Unknown destination handset"
        assert message["price"] == "-0.03000"  # undelivered was sent: charged
        assert sms.callback_log()[1]["error_code"] == 30005


def test_failed_message_is_never_sent_nor_charged(tmp_path, receiver):
    knobs = {
        "delivery_delay_s": 0.2,
        "late_failure_rate": 1.0,
        "late_failed_share": 1.0,
        "late_failure_codes": [30006],
    }
    with SmsSandbox.started(tmp_path / "sms", knobs) as sms:
        sid = sms.send(StatusCallback=receiver.url()).json()["sid"]
        seen: set[str] = set()

        def final():
            message = sms.fetch(sid)
            seen.add(message["status"])
            return message if message["status"] in FINAL else None

        message = wait_for(final)
        assert seen <= {"queued", "failed"}
        assert message["status"] == "failed"
        assert message["error_code"] == 30006
        assert message["error_message"] == "Landline or unreachable carrier"
        assert message["price"] is None
        got = receiver.wait_for(1)
        time.sleep(0.1)
        assert [c.form["MessageStatus"] for c in receiver.snapshot()] == ["failed"]
        assert got[0].form["ErrorCode"] == "30006"
        assert got[0].signature_valid


def test_callback_is_retried_on_connection_errors_until_the_receiver_is_up(tmp_path):
    port = free_port()  # nothing listens there yet: connection refused
    knobs = {"delivery_delay_s": 0.1, "callback_retries": 6, "callback_retry_delay_ms": 100}
    receiver = CallbackReceiver()
    with SmsSandbox.started(tmp_path / "sms", knobs) as sms:
        callback_url = f"http://127.0.0.1:{port}/hook"
        sid = sms.send(StatusCallback=callback_url).json()["sid"]
        wait_for(lambda: any(c["error"] for c in sms.callback_log()))
        receiver.start(port=port)
        try:
            got = receiver.wait_for(2, timeout=10)
            assert [c.form["MessageStatus"] for c in got] == ["sent", "delivered"]
            assert all(c.signature_valid and c.url == callback_url for c in got)
            log = sms.callback_log()
            sent = [c for c in log if c["message_status"] == "sent"]
            assert len(sent) >= 2
            assert [c["attempt"] for c in sent] == list(range(1, len(sent) + 1))
            assert all("ConnectError" in c["error"] for c in sent[:-1])
            assert sent[-1]["http_status"] == 204 and sent[-1]["error"] is None
            # every attempt at one event carries the same signature and idempotency token
            assert len({c["signature"] for c in sent}) == 1
            assert len({c["idempotency_token"] for c in sent}) == 1
            assert {c.form["MessageSid"] for c in got} == {sid}
        finally:
            receiver.stop()


def test_callback_gives_up_after_its_retries_and_moves_on(tmp_path):
    knobs = {"delivery_delay_s": 0.05, "callback_retries": 2, "callback_retry_delay_ms": 10}
    with SmsSandbox.started(tmp_path / "sms", knobs) as sms:
        sms.send(StatusCallback=f"http://127.0.0.1:{free_port()}/hook")
        log = wait_for(lambda: (log := sms.callback_log()) and len(log) >= 6 and log)
        time.sleep(0.2)
        assert len(sms.callback_log()) == 6
        assert [(c["message_status"], c["attempt"]) for c in log] == [
            ("sent", 1), ("sent", 2), ("sent", 3),
            ("delivered", 1), ("delivered", 2), ("delivered", 3),
        ]  # fmt: skip
        assert all(c["http_status"] is None and c["error"] for c in log)


def test_an_http_error_answer_is_recorded_not_retried(tmp_path):
    with (
        CallbackReceiver.started(status_code=500) as receiver,
        SmsSandbox.started(tmp_path / "sms", {"delivery_delay_s": 0.05}) as sms,
    ):
        sms.send(StatusCallback=receiver.url())
        receiver.wait_for(2)
        time.sleep(0.3)
        assert len(receiver.snapshot()) == 2
        assert [(c["attempt"], c["http_status"]) for c in sms.callback_log()] == [
            (1, 500),
            (1, 500),
        ]


def test_callbacks_still_due_are_sent_after_a_restart(tmp_path, receiver):
    box = SmsSandbox(tmp_path / "sms", {"delivery_delay_s": 1.0})
    box.start()
    try:
        sid = box.send(StatusCallback=receiver.url()).json()["sid"]
        box.stop()  # before 'sent' is due
        assert receiver.snapshot() == []
        box.start()
        got = receiver.wait_for(2, timeout=5)
        time.sleep(0.2)
        assert [c.form["MessageStatus"] for c in receiver.snapshot()] == ["sent", "delivered"]
        assert {c.form["MessageSid"] for c in got} == {sid}
        box.restart()  # all done: nothing is sent again
        time.sleep(0.3)
        assert len(receiver.snapshot()) == 2
    finally:
        box.stop()


OLD_SCHEMA = """
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, sid TEXT NOT NULL UNIQUE,
    account_sid TEXT NOT NULL, to_number TEXT NOT NULL, from_number TEXT NOT NULL,
    body TEXT NOT NULL, num_segments INTEGER NOT NULL, encoding TEXT NOT NULL, country TEXT,
    price TEXT NOT NULL, status_callback TEXT, created_at REAL NOT NULL, sent_at REAL NOT NULL,
    final_at REAL NOT NULL, final_status TEXT NOT NULL, final_error_code INTEGER
);
CREATE TABLE callbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, sid TEXT NOT NULL, url TEXT NOT NULL,
    message_status TEXT NOT NULL, http_status INTEGER, error TEXT, at REAL NOT NULL
);
"""


def test_a_state_dir_from_before_is_migrated_without_replaying_callbacks(tmp_path, receiver):
    state = tmp_path / "sms"
    state.mkdir()
    conn = sqlite3.connect(state / "sms_gateway.sqlite3")
    conn.executescript(OLD_SCHEMA)
    now = time.time()
    sid = "SM" + "a" * 32
    conn.execute(
        "INSERT INTO messages (sid, account_sid, to_number, from_number, body, num_segments,"
        " encoding, country, price, status_callback, created_at, sent_at, final_at,"
        " final_status, final_error_code) VALUES (?, ?, ?, ?, 'old', 1, 'GSM-7', 'TH',"
        " '-0.03000', ?, ?, ?, ?, 'delivered', NULL)",
        (sid, ACCOUNT_SID, THAI_MOBILE, "Courier", receiver.url(), now - 60, now - 59, now - 58),
    )
    conn.commit()
    conn.close()
    with SmsSandbox.started(state, {"delivery_delay_s": 0.05}) as sms:
        assert sms.fetch(sid)["status"] == "delivered"
        new_sid = sms.send(StatusCallback=receiver.url()).json()["sid"]
        got = receiver.wait_for(2)
        time.sleep(0.2)
        assert {c.form["MessageSid"] for c in receiver.snapshot()} == {new_sid}
        assert [c["attempt"] for c in sms.callback_log()] == [1, 1]
        assert len(got) == 2


# -- late delivery failures ----------------------------------------------------------------


def fates(sms: SmsSandbox, count: int) -> list[tuple[str, int | None, str | None]]:
    """Send until ``count`` are accepted; their final (status, error_code, error_message)."""
    sids: list[str] = []
    while len(sids) < count:
        response = sms.send(THAI_MOBILE, f"message {len(sids)}")
        if response.status_code == 201:
            sids.append(response.json()["sid"])

    def final():
        messages = {m["sid"]: m for m in sms.recorded()}
        done = [messages[sid] for sid in sids]
        return done if all(m["status"] in FINAL for m in done) else None

    return [(m["status"], m["error_code"], m["error_message"]) for m in wait_for(final)]


def test_late_failures_are_a_seeded_fraction_with_the_default_codes(tmp_path):
    knobs = {"delivery_delay_s": 0.05, "late_failure_rate": 0.5, "seed": 11}
    with SmsSandbox.started(tmp_path / "a", knobs) as sms:
        first = fates(sms, 24)
    with SmsSandbox.started(tmp_path / "b", knobs) as sms:
        assert fates(sms, 24) == first  # same seed, same fates
    # request faults draw from another generator: they leave the fates alone
    with SmsSandbox.started(tmp_path / "c", {**knobs, "fail_rate": 0.3}) as sms:
        assert fates(sms, 24) == first
        assert httpx.get(f"{sms.url}/_sandbox/stats").json()["failed_injected"] > 0
    with SmsSandbox.started(tmp_path / "d", {**knobs, "seed": 12}) as sms:
        assert fates(sms, 24) != first

    failures = [f for f in first if f[0] != "delivered"]
    assert 6 <= len(failures) <= 18
    assert {status for status, _, _ in failures} == {"undelivered"}  # late_failed_share 0
    assert {code for _, code, _ in failures} == {30003, 30005, 30006}
    for _, code, message in failures:
        assert message == ERROR_MESSAGES[code]
    assert all(code is None and message is None for s, code, message in first if s == "delivered")


def test_late_failed_share_splits_failed_from_undelivered(tmp_path):
    knobs = {
        "delivery_delay_s": 0.05,
        "late_failure_rate": 1.0,
        "late_failed_share": 0.5,
        "late_failure_codes": [30003],
        "seed": 5,
    }
    with SmsSandbox.started(tmp_path / "sms", knobs) as sms:
        statuses = [status for status, _, _ in fates(sms, 30)]
        assert set(statuses) == {"failed", "undelivered"}
        charged = {m["status"]: m["price"] for m in sms.recorded()}
        assert charged == {"failed": None, "undelivered": "-0.03000"}


def test_late_failure_knobs_are_validated(tmp_path):
    with SmsSandbox.started(tmp_path / "sms") as sms:
        config = httpx.get(f"{sms.url}/_sandbox/config").json()
        assert config["late_failure_codes"] == [30003, 30005, 30006]
        assert config["late_failure_rate"] == 0
        for bad in (
            {"late_failure_codes": [12345]},
            {"late_failure_codes": []},
            {"late_failure_codes": "30003"},
            {"late_failure_codes": [True]},
            {"late_failure_rate": 1.5},
            {"late_failed_share": -0.1},
            {"price_multiplier": -1},
            {"callback_retries": -1},
        ):
            response = httpx.post(f"{sms.url}/_sandbox/config", json=bad)
            assert response.status_code == 400, bad
        assert sms.configure(late_failure_codes=[30006])["late_failure_codes"] == [30006]


# -- opt-out (STOP) ------------------------------------------------------------------------


def test_stop_opts_the_number_out_and_a_create_answers_21610(tmp_path):
    with SmsSandbox.started(tmp_path / "sms") as sms:
        assert sms.send(THAI_MOBILE).status_code == 201
        reply = sms.inbound(THAI_MOBILE, " stop ", To="Courier")
        assert reply.status_code == 200
        assert reply.json() == {
            "from": THAI_MOBILE,
            "body": " stop ",
            "action": "opt_out",
            "opted_out": True,
        }
        for to in (THAI_MOBILE, "+66 81 234 5678"):  # matched after normalization
            blocked = sms.send(to)
            assert blocked.status_code == 400
            assert blocked.json() == {
                "code": 21610,
                "message": "Attempt to send to unsubscribed recipient",
                "more_info": "https://www.twilio.com/docs/errors/21610",
                "status": 400,
            }
        assert sms.send(OTHER_MOBILE).status_code == 201
        assert len(sms.recorded()) == 2
        [entry] = sms.opt_outs()
        assert entry["number"] == THAI_MOBILE
        assert entry["keyword"] == "STOP"
        assert entry["sender"] == "Courier"
        stats = httpx.get(f"{sms.url}/_sandbox/stats").json()
        assert stats["rejected_opted_out"] == 2

        assert sms.inbound(THAI_MOBILE, "START").json()["action"] == "opt_in"
        assert sms.opt_outs() == []
        assert sms.send(THAI_MOBILE).status_code == 201


@pytest.mark.parametrize(
    ("body", "action"),
    [
        ("STOPALL", "opt_out"),
        ("unsubscribe", "opt_out"),
        ("Cancel", "opt_out"),
        ("END", "opt_out"),
        ("quit\n", "opt_out"),
        ("stop please", "none"),  # keywords count only as the whole body
        ("Thanks!", "none"),
    ],
)
def test_opt_out_keywords(tmp_path, body, action):
    with SmsSandbox.started(tmp_path / "sms") as sms:
        assert sms.inbound(THAI_MOBILE, body).json()["action"] == action
        expected = 400 if action == "opt_out" else 201
        assert sms.send(THAI_MOBILE).status_code == expected
        assert len(httpx.get(f"{sms.url}/_sandbox/inbound").json()["inbound"]) == 1


@pytest.mark.parametrize("keyword", ["START", "unstop", "Yes"])
def test_opt_in_keywords(tmp_path, keyword):
    with SmsSandbox.started(tmp_path / "sms") as sms:
        sms.inbound(THAI_MOBILE, "STOP")
        assert sms.inbound(THAI_MOBILE, keyword).json() == {
            "from": THAI_MOBILE,
            "body": keyword,
            "action": "opt_in",
            "opted_out": False,
        }
        assert sms.send(THAI_MOBILE).status_code == 201


def test_opt_outs_survive_a_restart_and_reset_clears_them(tmp_path):
    box = SmsSandbox(tmp_path / "sms")
    box.start()
    try:
        box.inbound(THAI_MOBILE, "STOP")
        box.restart()
        assert [o["number"] for o in box.opt_outs()] == [THAI_MOBILE]
        assert box.send(THAI_MOBILE).json()["code"] == 21610
        assert httpx.post(f"{box.url}/_sandbox/reset").status_code == 200
        assert box.opt_outs() == []
        assert box.send(THAI_MOBILE).status_code == 201
    finally:
        box.stop()


def test_inbound_needs_a_valid_from(tmp_path):
    with SmsSandbox.started(tmp_path / "sms") as sms:
        assert sms.inbound("not-a-number", "STOP").status_code == 400
        missing = httpx.post(f"{sms.url}/_sandbox/inbound", data={"Body": "STOP"})
        assert missing.status_code == 400
        assert sms.opt_outs() == []


# -- rate limit: a token bucket ------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def admitted(bucket: TokenBucket, clock: FakeClock, arrivals: list[float]) -> list[bool]:
    out = []
    for at in arrivals:
        clock.now = 1000.0 + at
        out.append(bucket.take() is None)
    return out


def conforming_arrivals(rng: random.Random, limit: int, seconds: float) -> list[float]:
    """Random arrivals with at most ``limit`` in every window [t, t+1), often exactly at the
    boundary. Times are multiples of 1/1024 s, exact in binary floating point."""
    arrivals: list[float] = []
    t = 0.0
    while t < seconds:
        window = [a for a in arrivals if a > t - 1]
        if len(window) >= limit:
            t = window[0] + 1.0  # the earliest moment the window allows another
        arrivals.append(t)
        t += rng.choice([0, 0, 1, 3, 50, 300]) / 1024
    return arrivals


@pytest.mark.parametrize("rate", [1, 2.5, 3, 10, 40])
def test_bucket_admits_every_sequence_within_rate_per_second(rate):
    rng = random.Random(rate)
    for _ in range(20):
        clock = FakeClock()
        bucket = TokenBucket(rate, clock=clock)
        arrivals = conforming_arrivals(rng, int(rate), seconds=8)
        assert all(admitted(bucket, clock, arrivals)), rate


@pytest.mark.parametrize("rate", [2, 5, 20, 100])
def test_bucket_absorbs_jitter_of_an_evenly_paced_client(rate):
    rng = random.Random(rate)
    jitter = 0.45 / rate  # each arrival up to 45 % of a period early or late
    arrivals = sorted(i / rate + rng.uniform(-jitter, jitter) for i in range(1, 20 * rate))
    clock = FakeClock()
    assert all(admitted(TokenBucket(rate, clock=clock), clock, arrivals))

    # ...where a sliding log of the last second (the sandbox's former limiter) refuses some
    window: deque[float] = deque()
    refused = 0
    for at in arrivals:
        while window and window[0] <= at - 1.0:
            window.popleft()
        if len(window) < rate:
            window.append(at)
        else:
            refused += 1
    assert refused > 0


@pytest.mark.parametrize("rate", [1, 3, 10])
def test_bucket_bounds_a_flood(rate):
    clock = FakeClock()
    bucket = TokenBucket(rate, clock=clock)
    arrivals = [i / 1024 for i in range(10 * 1024)]  # 1024 calls/s for 10 s
    passed = [at for at, ok in zip(arrivals, admitted(bucket, clock, arrivals)) if ok]
    assert len(passed) <= rate + rate * 10  # capacity + rate * elapsed
    for start in passed:
        in_window = [at for at in passed if start <= at < start + 1]
        assert len(in_window) <= 2 * rate - 1
    assert passed[:rate] == arrivals[:rate]  # a full bucket lets a burst of `rate` through


def test_bucket_retry_after_is_when_the_next_token_is_there():
    clock = FakeClock()
    bucket = TokenBucket(4, clock=clock)
    assert all(admitted(bucket, clock, [0, 0, 0, 0]))
    wait = bucket.take()
    assert wait == pytest.approx(0.25)
    assert TokenBucket.retry_after_header(wait) == "1"
    clock.now += 0.2
    assert bucket.take() == pytest.approx(0.05)  # a refused call takes nothing
    clock.now += 0.05
    assert bucket.take() is None
    zero = TokenBucket(0, clock=clock)
    assert zero.take() == 1.0


def test_a_client_pacing_evenly_at_the_limit_sees_no_429(tmp_path):
    rate = 20
    with SmsSandbox.started(tmp_path / "sms", {"rate_limit_per_s": rate}) as sms:
        start = time.monotonic()
        codes = []
        for i in range(2 * rate):
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
            codes.append(sms.send(THAI_MOBILE, f"paced {i}").status_code)
        assert codes.count(429) == 0, codes
        assert len(sms.recorded()) == 2 * rate


def test_a_burst_beyond_the_bucket_gets_429_with_retry_after(tmp_path):
    # rate 2: a full bucket holds 2 tokens, one comes back every 0.5 s
    with SmsSandbox.started(tmp_path / "sms", {"rate_limit_per_s": 2}) as sms:
        assert [sms.send().status_code for _ in range(2)] == [201, 201]
        limited = sms.send()
        assert limited.status_code == 429
        assert limited.json()["code"] == 20429
        assert limited.headers["Retry-After"] == "1"
        time.sleep(0.6)
        assert sms.send().status_code == 201
        stats = httpx.get(f"{sms.url}/_sandbox/stats").json()
        assert stats["rate_limited"] == 1
        assert len(sms.recorded()) == 3


def test_rate_limit_zero_refuses_and_a_change_refills(tmp_path):
    with SmsSandbox.started(tmp_path / "sms", {"rate_limit_per_s": 0}) as sms:
        assert sms.send().status_code == 429
        sms.configure(rate_limit_per_s=3)
        assert [sms.send().status_code for _ in range(3)] == [201] * 3
        sms.configure(rate_limit_per_s=None)
        assert all(sms.send().status_code == 201 for _ in range(10))


def test_concurrent_calls_share_the_bucket_while_latency_holds_them(tmp_path):
    """Tokens are taken as calls arrive, before ``latency_ms``: of 4 calls arriving together,
    2 pass, whatever their answers' order."""
    knobs = {"rate_limit_per_s": 2, "latency_ms": 300}
    with SmsSandbox.started(tmp_path / "sms", knobs) as sms:
        barrier = threading.Barrier(4)

        def call(i: int) -> int:
            barrier.wait()
            return sms.send(THAI_MOBILE, f"concurrent {i}").status_code

        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            codes = sorted(pool.map(call, range(4)))
        assert codes == [201, 201, 429, 429]
        assert time.monotonic() - started >= 0.3  # refused calls wait latency_ms too


# -- price ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("multiplier", "body", "price"),
    [
        (1, "hello", "-0.03000"),
        (1.5, "hello", "-0.04500"),
        (1.5, "ก" * 71, "-0.09000"),  # 2 UCS-2 segments x 0.03 x 1.5
        (0.9, "a" * 161, "-0.05400"),
        (0, "hello", "0.00000"),
    ],
)
def test_price_multiplier_scales_the_price_set_when_sent(tmp_path, multiplier, body, price):
    knobs = {"delivery_delay_s": 0.1, "price_multiplier": multiplier}
    with SmsSandbox.started(tmp_path / "sms", knobs) as sms:
        created = sms.send(THAI_MOBILE, body).json()
        assert created["price"] is None  # queued: no price yet
        message = wait_for(lambda: (m := sms.fetch(created["sid"]))["status"] != "queued" and m)
        assert message["price"] == price
        assert message["price_unit"] == "USD"
        assert Decimal(price) == -Decimal("0.03") * int(message["num_segments"]) * Decimal(
            str(multiplier)
        )


def test_price_multiplier_applies_to_messages_accepted_after_the_change(tmp_path):
    with SmsSandbox.started(tmp_path / "sms", {"delivery_delay_s": 0.05}) as sms:
        before = sms.send().json()["sid"]
        sms.configure(price_multiplier=2)
        after = sms.send().json()["sid"]
        time.sleep(0.1)
        assert sms.fetch(before)["price"] == "-0.03000"
        assert sms.fetch(after)["price"] == "-0.06000"
