"""Twilio conformance, judged by a third party: Stoplight Prism against Twilio's own OpenAPI.

The product adapter (``courier.adapters.sms.TwilioSmsGateway``) talks to the sandbox gateway
*through* ``prism proxy --errors``, so every request the adapter writes and every response
the sandbox gives is validated against ``shared/twilio/twilio_api_v2010.json``; a violation
makes the call fail (Prism answers 422 for a bad request, 500 for a bad response).

Findings, each pinned by a test here so a change on either side shows up:

1. **Page URIs** (spec nit). The list page's ``uri``, ``first_page_uri``, ``next_page_uri``
   and ``previous_page_uri`` are declared ``format: uri`` (an absolute URI), yet Twilio
   returns paths relative to ``https://api.twilio.com`` and the document's own examples are
   relative. Prism flags exactly those fields on the sandbox's (Twilio-like) list page. The
   strict proxy therefore uses a copy of the document in which only those four ``format``
   values read ``uri-reference``; the report-only proxy keeps Twilio's document untouched and
   ``test_untouched_document_flags_only_the_page_uris`` asserts those flags are the *only*
   findings on a list page.
2. **Error bodies are outside the contract.** The document lists only 201/200 for the
   Messages operations and has no error schema, so Prism can merely warn "Unable to match
   the returned status code"; the tests assert that warning is all it says and check
   Twilio's error shape (code, message, more_info, status) themselves.
3. **``DateSent`` in the adapter's look-up.** The document declares ``DateSent`` as
   ``format: date-time``; this check caught the adapter sending ``YYYY-MM-DD`` (the form in
   Twilio's REST docs), and it now sends ``YYYY-MM-DDT00:00:00Z`` as twilio-python does.

What Prism cannot see: Twilio's own formats (``phone-number``, ``date-time-rfc-2822``,
``uri-map``, ``currency``) are unknown to it and pass unchecked, and the Message schema has
no ``required`` list and allows extra properties. ``test_sandbox_sms.py`` checks the dates.

Two Prism processes serve the module (start-up parses the 1.8 MB document; it costs seconds):
``strict`` (``--errors``, relaxed page URIs) and ``report_only`` (no ``--errors``, Twilio's
document as is). Both forward to one upstream: the sandbox app, with a switch in front that
answers chosen paths with a canned body, the "fake server" for non-conforming responses.
"""

from __future__ import annotations

import asyncio
import copy
import email.utils
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from starlette.responses import JSONResponse

import courier.adapters.sms as sms_adapter
from courier.adapters.errors import PermanentError
from courier.adapters.sms import TwilioSmsGateway
from sandbox.server import run_in_thread
from sandbox.sms_gateway import create_sms_app
from tests.support.prism import (
    CONFORMANCE_DIR,
    INVALID_REQUEST,
    INVALID_RESPONSE,
    UNAUTHORIZED,
    Prism,
    Recorder,
    Violation,
    installed_prism_version,
    require_prism,
    running,
    verdict,
)
from tests.support.sandbox_fixtures import ACCOUNT_SID, AUTH_TOKEN, TWILIO_SPEC

T = TypeVar("T")

SENDER = "Courier"
MESSAGES = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
MESSAGE = "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
PAGE_URI_FIELDS = ("uri", "first_page_uri", "next_page_uri", "previous_page_uri")
TWILIO_ERROR_KEYS = {"code", "message", "more_info", "status"}


def undocumented_status(documented: int) -> Violation:
    """Prism's only remark on an error answer: the document lists no such status."""
    return Violation(
        ("response",),
        "Warning",
        "",
        f"Unable to match the returned status code with those defined in the document: "
        f"{documented}",
    )


#: What Prism says about the adapter's ``DateSent=YYYY-MM-DD`` (finding 3).
DATE_ONLY_DATE_SENT = Violation(
    ("request", "query", "datesent"),
    "Error",
    "format",
    'Request query parameter datesent must match format "date-time"',
)


# --- the contract -----------------------------------------------------------------------


def relax_page_uri_formats(spec: dict[str, Any]) -> dict[str, Any]:
    """Twilio's document with the list page's four ``*uri`` fields as ``uri-reference``.

    Nothing else changes (``test_relaxed_document_differs_only_in_the_page_uri_formats``).
    """
    relaxed = copy.deepcopy(spec)
    page = relaxed["paths"][MESSAGES]["get"]["responses"]["200"]["content"]["application/json"]
    for name in PAGE_URI_FIELDS:
        prop = page["schema"]["properties"][name]
        assert prop.get("format") == "uri", f"the document changed: {name} is {prop}"
        prop["format"] = "uri-reference"
    return relaxed


def differences(a: Any, b: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a.keys() | b.keys():
            yield from differences(a.get(key), b.get(key), (*path, key))
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from differences(x, y, (*path, str(index)))
    elif a != b:
        yield path


@pytest.fixture(scope="module")
def prism_bin() -> Path:
    return require_prism()


@pytest.fixture(scope="module")
def twilio_spec() -> dict[str, Any]:
    if not TWILIO_SPEC.is_file():
        pytest.skip(f"Twilio OpenAPI description not found at {TWILIO_SPEC}")
    return json.loads(TWILIO_SPEC.read_text())


@pytest.fixture(scope="module")
def relaxed_spec_path(twilio_spec, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("contract") / "twilio_api_v2010.relaxed-page-uris.json"
    path.write_text(json.dumps(relax_page_uri_formats(twilio_spec)))
    return path


# --- the upstream: the sandbox app, with canned answers on chosen paths -----------------


@dataclass
class Upstream:
    url: str
    #: path -> JSON body answered (200) instead of the sandbox, for non-conforming responses.
    canned: dict[str, Any]

    def send(self, to: str, body: str) -> dict[str, Any]:
        response = httpx.post(
            self.url + MESSAGES_PATH,
            data={"To": to, "From": SENDER, "Body": body},
            auth=(ACCOUNT_SID, AUTH_TOKEN),
        )
        assert response.status_code == 201, response.text
        return response.json()

    def recorded_sids(self) -> set[str]:
        messages = httpx.get(f"{self.url}/_sandbox/messages").json()["messages"]
        return {m["sid"] for m in messages}

    def create_calls(self) -> int:
        return httpx.get(f"{self.url}/_sandbox/stats").json()["create_calls"]


@pytest.fixture(scope="module")
def upstream(tmp_path_factory) -> Iterator[Upstream]:
    sandbox = create_sms_app(tmp_path_factory.mktemp("sms"), ACCOUNT_SID, AUTH_TOKEN)
    canned: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] in canned:
            await JSONResponse(canned[scope["path"]])(scope, receive, send)
        else:
            await sandbox(scope, receive, send)

    url, stop = run_in_thread(app)
    try:
        yield Upstream(url, canned)
    finally:
        stop()


# --- Prism ------------------------------------------------------------------------------


@dataclass
class Proxies:
    strict: Prism  # --errors, page URIs relaxed: a violation fails the call
    report_only: Prism  # no --errors, Twilio's document untouched: sl-violations is the verdict


@pytest.fixture(scope="module")
def prism(prism_bin, relaxed_spec_path, upstream, tmp_path_factory) -> Iterator[Proxies]:
    logs = tmp_path_factory.mktemp("prism-logs")
    proxies = Proxies(
        strict=Prism(relaxed_spec_path, upstream.url, logs / "strict.log"),
        report_only=Prism(TWILIO_SPEC, upstream.url, logs / "report-only.log", errors=False),
    )
    with running(proxies.strict, proxies.report_only):
        yield proxies


# --- helpers ----------------------------------------------------------------------------


def through(
    proxy: Prism,
    recorder: Recorder,
    call: Callable[[TwilioSmsGateway], Awaitable[T]],
    *,
    token: str = AUTH_TOKEN,
    status_callback_url: str = "",
) -> T:
    """Run one adapter call against ``proxy``; ``recorder`` keeps Prism's verdicts."""

    async def go() -> T:
        hooks = {"response": [recorder.async_hook]}
        async with httpx.AsyncClient(event_hooks=hooks) as client:
            gateway = TwilioSmsGateway(
                client,
                proxy.url,
                ACCOUNT_SID,
                token,
                SENDER,
                status_callback_url=status_callback_url,
            )
            return await call(gateway)

    try:
        return asyncio.run(go())
    except Exception as error:
        error.add_note("Prism's verdicts:\n" + recorder.report())
        raise


def raw_client(proxy: Prism, recorder: Recorder, **kwargs: Any) -> httpx.Client:
    kwargs.setdefault("auth", (ACCOUNT_SID, AUTH_TOKEN))
    return httpx.Client(
        base_url=proxy.url, timeout=20, event_hooks={"response": [recorder.hook]}, **kwargs
    )


def assert_clean(recorder: Recorder, *statuses: int) -> None:
    """Every exchange passed Prism untouched, with no finding at all."""
    assert [x.status for x in recorder.exchanges] == list(statuses), recorder.report()
    for exchange in recorder.exchanges:
        assert not exchange.verdict.blocked, recorder.report()
        assert exchange.verdict.violations == (), recorder.report()


def assert_twilio_error(body: Any, status: int, code: int) -> None:
    assert isinstance(body, dict) and set(body) == TWILIO_ERROR_KEYS, body
    assert body["code"] == code and body["status"] == status
    assert isinstance(body["message"], str) and body["message"]
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"


def page_uri_findings(page: dict[str, Any]) -> set[Violation]:
    """What Prism says about a list page's relative URIs under Twilio's document (finding 1)."""
    return {
        Violation(
            ("response", "body", name),
            "Error",
            "format",
            f'Response body property {name} must match format "uri"',
        )
        for name in PAGE_URI_FIELDS
        if page.get(name) is not None
    }


def seed(upstream: Upstream, to: str, bodies: list[str]) -> list[dict[str, Any]]:
    """Messages created straight at the sandbox (oldest first)."""
    return [upstream.send(to, body) for body in bodies]


def utc_day(message: dict[str, Any]) -> date:
    return email.utils.parsedate_to_datetime(message["date_created"]).date()


# --- setup ------------------------------------------------------------------------------


def test_installed_prism_is_the_pinned_one(prism_bin):
    pinned = json.loads((CONFORMANCE_DIR / "package.json").read_text())["dependencies"]
    assert installed_prism_version() == pinned["@stoplight/prism-cli"]


def test_relaxed_document_differs_only_in_the_page_uri_formats(twilio_spec):
    changed = sorted(differences(twilio_spec, relax_page_uri_formats(twilio_spec)))
    base = ("paths", MESSAGES, "get", "responses", "200", "content", "application/json")
    assert changed == sorted(
        (*base, "schema", "properties", name, "format") for name in PAGE_URI_FIELDS
    )
    # Twilio's own example page uses relative URIs, which `format: uri` rejects.
    example = twilio_spec["paths"][MESSAGES]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["examples"]["readFullPage1"]["value"]
    assert example["first_page_uri"].startswith("/2010-04-01/Accounts/")


# --- the adapter through Prism: every request and response conforms ------------------------


def test_send_is_a_conforming_create_with_201(prism, upstream):
    recorder = Recorder()
    sent = through(
        prism.strict,
        recorder,
        lambda gw: gw.send("+66812345601", "Invoice INV-1: https://docs.example/d/abc"),
        status_callback_url="http://127.0.0.1:9/sms-status",  # StatusCallback (format uri)
    )
    assert_clean(recorder, 201)
    (exchange,) = recorder.exchanges
    assert exchange.method == "POST" and exchange.url == prism.strict.url + MESSAGES_PATH
    assert exchange.body["sid"] == sent.sid and sent.to == "+66812345601"
    assert sent.status == "queued" and sent.num_segments == 1 and sent.price is None
    assert sent.sid in upstream.recorded_sids()


def test_fetch_conforms_while_queued_and_once_delivered(prism):
    recorder = Recorder()
    sent = through(prism.strict, recorder, lambda gw: gw.send("+66812345602", "Hello"))
    queued = through(prism.strict, recorder, lambda gw: gw.fetch(sent.sid))
    time.sleep(0.4)  # the sandbox's default delivery delay is 0.2 s
    delivered = through(prism.strict, recorder, lambda gw: gw.fetch(sent.sid))
    assert_clean(recorder, 201, 200, 200)
    assert queued.sid == delivered.sid == sent.sid
    assert delivered.status == "delivered" and delivered.price is not None
    last = recorder.exchanges[-1].body
    assert isinstance(last["price"], str) and isinstance(last["num_segments"], str)


def test_list_with_to_and_date_sent_filters_pages_conform(prism, upstream):
    """The sandbox's list pages, walked by next_page_uri, with DateSent as a date-time."""
    to = "+66812345603"
    sent = seed(upstream, to, ["first", "second", "third"])
    recorder = Recorder()
    seen: list[str] = []
    pages: list[dict[str, Any]] = []
    with raw_client(prism.strict, recorder) as client:
        params: dict[str, Any] | None = {
            "To": to,
            "DateSent": f"{utc_day(sent[0]).isoformat()}T00:00:00Z",  # as twilio-python sends
            "PageSize": 1,
        }
        url: str | None = MESSAGES_PATH
        while url:
            response = client.get(url, params=params)
            assert response.status_code == 200, recorder.report()
            page = response.json()
            pages.append(page)
            seen += [m["sid"] for m in page["messages"]]
            url, params = page["next_page_uri"], None
    assert_clean(recorder, 200, 200, 200)
    assert seen == [m["sid"] for m in reversed(sent)]
    assert pages[0]["previous_page_uri"] is None
    assert all(p["previous_page_uri"] for p in pages[1:])  # validated as non-null, too
    assert all(p["uri"].startswith("/2010-04-01/") for p in pages)  # relative (finding 1)


def test_adapter_find_sent_pages_with_only_the_known_findings(prism, upstream, monkeypatch):
    """find_sent through the report-only proxy: DateSent's format and the page URIs, no more."""
    monkeypatch.setattr(sms_adapter, "LOOKUP_PAGE_SIZE", 1)  # force paging
    to = "+66812345604"
    sent = seed(upstream, to, ["oldest", "middle", "newest"])
    day = utc_day(sent[0])
    recorder = Recorder()
    found = through(prism.report_only, recorder, lambda gw: gw.find_sent(to, day, "oldest"))
    assert found is not None and found.sid == sent[0]["sid"]
    missing = through(prism.report_only, recorder, lambda gw: gw.find_sent(to, day, "absent"))
    assert missing is None
    assert [x.status for x in recorder.exchanges] == [200] * 6, recorder.report()
    assert "PageToken=" in recorder.exchanges[1].url  # followed next_page_uri
    for exchange in recorder.exchanges:
        assert not exchange.verdict.blocked, recorder.report()
        findings = set(exchange.verdict.violations)
        on_request = {v for v in findings if v.location[:1] == ("request",)}
        # Requests: none (DateSent is sent in the contract's date-time form).
        assert on_request == set(), recorder.report()
        # Responses: the page-URI nit, exactly.
        assert findings - on_request == page_uri_findings(exchange.body), recorder.report()


def test_adapter_find_sent_passes_strict_prism(prism, upstream):
    to = "+66812345605"
    (message,) = seed(upstream, to, ["look me up"])
    recorder = Recorder()
    found = through(
        prism.strict, recorder, lambda gw: gw.find_sent(to, utc_day(message), "look me up")
    )
    assert found is not None and found.sid == message["sid"]
    assert_clean(recorder, 200)


@pytest.mark.parametrize(
    ("to", "code"),
    [("12345", 21211), ("+6621234567", 21614)],  # not a number; a Bangkok landline
)
def test_refused_number_is_a_twilio_400_that_prism_only_warns_about(prism, to, code):
    recorder = Recorder()
    with pytest.raises(PermanentError) as refused:
        through(prism.strict, recorder, lambda gw: gw.send(to, "Hello"))
    assert refused.value.status == 400 and refused.value.code == str(code)
    (exchange,) = recorder.exchanges
    assert exchange.status == 400 and not exchange.verdict.blocked, recorder.report()
    assert exchange.verdict.violations == (undocumented_status(201),), recorder.report()
    assert_twilio_error(exchange.body, 400, code)


def test_bad_credentials_are_a_twilio_401(prism):
    recorder = Recorder()
    with pytest.raises(PermanentError) as refused:
        through(prism.strict, recorder, lambda gw: gw.send("+66812345606", "Hi"), token="wrong")
    assert refused.value.status == 401 and refused.value.code == "20003"
    (exchange,) = recorder.exchanges
    assert exchange.status == 401 and not exchange.verdict.blocked, recorder.report()
    assert exchange.verdict.violations == (undocumented_status(201),), recorder.report()
    assert_twilio_error(exchange.body, 401, 20003)
    assert exchange.headers["www-authenticate"].lower().startswith("basic")


# --- the check can fail: requests ---------------------------------------------------------


@pytest.mark.parametrize(
    ("request_kwargs", "expected"),
    [
        pytest.param(
            {"json": {"To": "+66812345678", "From": SENDER, "Body": "Hi"}},
            Violation(
                ("request",), "Error", "415",
                "Supported content types: application/x-www-form-urlencoded",
            ),
            id="json-body",
        ),
        pytest.param(
            {"data": {"From": SENDER, "Body": "Hi"}},
            Violation(
                ("request", "body"), "Error", "required",
                "Request body must have required property 'To'",
            ),
            id="missing-To",
        ),
        pytest.param(
            {"data": {"To": "+66812345678", "From": SENDER, "Body": "Hi",
                      "StatusCallback": "not a url"}},
            Violation(
                ("request", "body", "StatusCallback"), "Error", "format",
                'Request body property StatusCallback must match format "uri"',
            ),
            id="StatusCallback-not-a-URI",
        ),
    ],
)  # fmt: skip
def test_malformed_create_is_rejected_by_prism_and_never_forwarded(
    prism, upstream, request_kwargs, expected
):
    before = upstream.create_calls()
    recorder = Recorder()
    with raw_client(prism.strict, recorder) as client:
        response = client.post(MESSAGES_PATH, **request_kwargs)
    found = verdict(response)
    assert response.status_code == 422 and found.problem_type == INVALID_REQUEST
    assert found.errors == (expected,), found.describe()
    assert upstream.create_calls() == before


def test_malformed_sid_in_the_path_is_rejected(prism):
    recorder = Recorder()
    with raw_client(prism.strict, recorder) as client:
        response = client.get(message_path("XX" + "0" * 32))
    found = verdict(response)
    assert response.status_code == 422 and found.problem_type == INVALID_REQUEST
    assert [(v.location, v.code) for v in found.errors] == [(("request", "path", "sid"), "pattern")]


def test_missing_credentials_are_rejected_by_prism_itself(prism, upstream):
    before = upstream.create_calls()
    recorder = Recorder()
    with raw_client(prism.strict, recorder, auth=None) as client:
        response = client.post(MESSAGES_PATH, data={"To": "+66812345678", "From": SENDER})
    found = verdict(response)
    assert response.status_code == 401 and found.problem_type == UNAUTHORIZED
    assert upstream.create_calls() == before


# --- the check can fail: responses --------------------------------------------------------


def message_path(sid: str) -> str:
    return f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json"


def twilio_fetch_example(spec: dict[str, Any]) -> dict[str, Any]:
    content = spec["paths"][MESSAGE]["get"]["responses"]["200"]["content"]["application/json"]
    return copy.deepcopy(content["examples"]["fetch"]["value"])


def fetch_canned(prism: Proxies, upstream: Upstream, body: dict[str, Any]) -> httpx.Response:
    """Fetch a message whose answer (200) is ``body`` instead of the sandbox's."""
    path = message_path("SM" + "f" * 32)
    upstream.canned[path] = body
    try:
        with raw_client(prism.strict, Recorder()) as client:
            return client.get(path)
    finally:
        upstream.canned.pop(path, None)


def test_twilios_own_example_passes(prism, upstream, twilio_spec):
    """Control for the cases below: each is flagged for its one change alone."""
    response = fetch_canned(prism, upstream, twilio_fetch_example(twilio_spec))
    found = verdict(response)
    assert response.status_code == 200 and found.violations == (), found.describe()


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("num_segments", 1, "type"),  # Twilio sends "1"
        ("price", -0.0075, "type"),  # Twilio sends "-0.00750"
        ("sid", "SM" + "z" * 32, "pattern"),
        ("status", "done", "enum"),
        ("error_code", "30007", "type"),  # an integer at Twilio
    ],
)
def test_non_conforming_response_is_flagged(prism, upstream, twilio_spec, field, value, code):
    body = twilio_fetch_example(twilio_spec) | {field: value}
    response = fetch_canned(prism, upstream, body)
    found = verdict(response)
    assert response.status_code == 500 and found.problem_type == INVALID_RESPONSE
    assert [(v.location, v.code) for v in found.errors] == [(("response", "body", field), code)]


def test_untouched_document_flags_only_the_page_uris(prism, upstream):
    """Finding 1, measured on a middle page (every *uri field set) of the sandbox's list."""
    to = "+66812345607"
    sent = seed(upstream, to, ["one", "two", "three"])
    params = {"To": to, "PageSize": 1, "Page": 1, "PageToken": "PA" + sent[2]["sid"]}
    recorder = Recorder()
    with raw_client(prism.report_only, recorder) as client:
        page = client.get(MESSAGES_PATH, params=params).json()
    (exchange,) = recorder.exchanges
    assert exchange.status == 200 and [m["sid"] for m in page["messages"]] == [sent[1]["sid"]]
    assert all(page[name] for name in PAGE_URI_FIELDS)
    assert set(exchange.verdict.violations) == page_uri_findings(page), recorder.report()
    for name in PAGE_URI_FIELDS:  # relative, as at Twilio and in the document's examples
        assert page[name].startswith(f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json?")
    # The same exchange through the strict proxy (relaxed document) passes untouched.
    recorder = Recorder()
    with raw_client(prism.strict, recorder) as client:
        again = client.get(MESSAGES_PATH, params=params).json()
    # Same page (a message's status may have moved on in between: compare identities).
    assert [m["sid"] for m in again["messages"]] == [m["sid"] for m in page["messages"]]
    assert {k: v for k, v in again.items() if k != "messages"} == {
        k: v for k, v in page.items() if k != "messages"
    }
    assert_clean(recorder, 200)
