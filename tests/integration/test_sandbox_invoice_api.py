"""The sandbox invoice API (stand-in ERP) over real loopback HTTP: paging and filters."""

from __future__ import annotations

import json
import os
import random
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from tests.support.sandbox_fixtures import invoice_api, write_jsonl

ZONES = [
    timezone(timedelta(hours=7)),
    UTC,
    timezone(timedelta(hours=3)),
    timezone(-timedelta(hours=5)),
]
BASE = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def make_records(count: int, seed: int = 1, start: int = 0) -> list[dict]:
    rng = random.Random(seed)
    records = []
    for i in range(start, start + count):
        # few distinct instants, so ties on issued_at (broken by number) are common
        moment = BASE + timedelta(minutes=rng.randrange(0, 20))
        zone = rng.choice(ZONES)
        issued = moment.astimezone(zone).isoformat()
        records.append(
            {
                "number": f"INV-{i:05d}",
                "issued_at": issued,
                "total": f"{rng.randrange(100, 99999)}.{rng.randrange(0, 99):02d}",
                "buyer": {"name": "บริษัท ตัวอย่าง จำกัด", "phone": "081-234-5678"},
            }
        )
    return records


def instant(record: dict) -> datetime:
    return datetime.fromisoformat(record["issued_at"]).astimezone(UTC)


def walk(url: str, **params) -> tuple[list[dict], int]:
    records: list[dict] = []
    pages = 0
    query = dict(params)
    while True:
        response = httpx.get(f"{url}/api/v1/invoices", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"data", "next_cursor"}
        records.extend(body["data"])
        pages += 1
        if body["next_cursor"] is None:
            return records, pages
        query = {"limit": params.get("limit", 100), "cursor": body["next_cursor"]}


@pytest.fixture
def invoices_path(tmp_path):
    return tmp_path / "invoices.jsonl"


def test_pagination_covers_every_record_exactly_once(invoices_path):
    records = make_records(57)
    write_jsonl(invoices_path, records)
    with invoice_api(invoices_path) as url:
        got, pages = walk(url, limit=10)
    assert pages == 6
    assert len(got) == 57
    assert sorted(r["number"] for r in got) == sorted(r["number"] for r in records)
    keys = [(instant(r), r["number"]) for r in got]
    assert keys == sorted(keys)


def test_records_pass_through_unchanged(invoices_path):
    records = make_records(3)
    write_jsonl(invoices_path, records)
    with invoice_api(invoices_path) as url:
        got, _ = walk(url)
    by_number = {r["number"]: r for r in records}
    for record in got:
        assert record == by_number[record["number"]]


def test_issued_after_is_strict_and_respects_offsets(invoices_path):
    records = make_records(40, seed=2)
    write_jsonl(invoices_path, records)
    cut = BASE + timedelta(minutes=10)
    expected = {r["number"] for r in records if instant(r) > cut}
    assert 0 < len(expected) < 40
    # the same instant written in Bangkok time must give the same answer
    for written in (cut.isoformat(), cut.astimezone(ZONES[0]).isoformat(), "2024-03-01T09:10:00Z"):
        with invoice_api(invoices_path) as url:
            got, _ = walk(url, issued_after=written, limit=7)
        assert {r["number"] for r in got} == expected
        assert len(got) == len(expected)


def test_cursor_keeps_the_filter_and_rejects_a_contradiction(invoices_path):
    write_jsonl(invoices_path, make_records(30, seed=3))
    cut = (BASE + timedelta(minutes=5)).isoformat()
    with invoice_api(invoices_path) as url:
        first = httpx.get(f"{url}/api/v1/invoices", params={"issued_after": cut, "limit": 5}).json()
        cursor = first["next_cursor"]
        assert cursor
        # repeating the filter is fine; omitting it keeps it; changing it is an error
        same = httpx.get(
            f"{url}/api/v1/invoices", params={"issued_after": cut, "limit": 5, "cursor": cursor}
        )
        omitted = httpx.get(f"{url}/api/v1/invoices", params={"limit": 5, "cursor": cursor})
        assert same.status_code == omitted.status_code == 200
        assert same.json() == omitted.json()
        other = httpx.get(
            f"{url}/api/v1/invoices",
            params={"issued_after": BASE.isoformat(), "limit": 5, "cursor": cursor},
        )
        assert other.status_code == 400


def test_paging_is_stable_while_the_file_grows(invoices_path):
    original = make_records(30, seed=4)
    write_jsonl(invoices_path, original)
    with invoice_api(invoices_path) as url:
        first = httpx.get(f"{url}/api/v1/invoices", params={"limit": 10}).json()
        # the ERP exports more invoices (some earlier, some later) between page requests
        added = make_records(15, seed=5, start=1000)
        write_jsonl(invoices_path, added, mode="a")
        os.utime(invoices_path, ns=(0, os.stat(invoices_path).st_mtime_ns + 1_000_000))
        rest: list[dict] = []
        cursor = first["next_cursor"]
        while cursor:
            page = httpx.get(f"{url}/api/v1/invoices", params={"limit": 10, "cursor": cursor})
            assert page.status_code == 200
            rest.extend(page.json()["data"])
            cursor = page.json()["next_cursor"]
    numbers = [r["number"] for r in first["data"] + rest]
    assert len(numbers) == len(set(numbers))  # nothing twice
    assert {r["number"] for r in original} <= set(numbers)  # nothing present all along is lost


def test_file_is_reread_when_it_changes(invoices_path):
    write_jsonl(invoices_path, make_records(2))
    with invoice_api(invoices_path) as url:
        assert len(httpx.get(f"{url}/api/v1/invoices").json()["data"]) == 2
        write_jsonl(invoices_path, make_records(5, seed=9))
        os.utime(invoices_path, ns=(0, os.stat(invoices_path).st_mtime_ns + 1_000_000))
        assert len(httpx.get(f"{url}/api/v1/invoices").json()["data"]) == 5


def test_missing_file_is_an_empty_source(tmp_path):
    with invoice_api(tmp_path / "nope.jsonl") as url:
        assert httpx.get(f"{url}/api/v1/invoices").json() == {"data": [], "next_cursor": None}


def test_bad_lines_are_skipped_and_reported(invoices_path):
    good = make_records(2)
    lines = [
        json.dumps(good[0]),
        "{not json",
        json.dumps({"number": "INV-X", "issued_at": "2024-03-01T09:00:00"}),  # no offset
        json.dumps({"issued_at": "2024-03-01T09:00:00+07:00"}),  # no number
        "",
        json.dumps(good[1]),
    ]
    invoices_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with invoice_api(invoices_path) as url:
        got, _ = walk(url)
        status = httpx.get(f"{url}/_sandbox/status").json()
    assert {r["number"] for r in got} == {good[0]["number"], good[1]["number"]}
    assert status["records"] == 2
    assert [s["line"] for s in status["skipped"]] == [2, 3, 4]


def test_duplicate_numbers_are_all_served(invoices_path):
    record = make_records(1)[0]
    write_jsonl(
        invoices_path, [record, {**record, "total": "1.00"}, *make_records(3, seed=8, start=100)]
    )
    with invoice_api(invoices_path) as url:
        got, _ = walk(url, limit=1)
    assert len(got) == 5
    assert [r["total"] for r in got if r["number"] == record["number"]] == [record["total"], "1.00"]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "abc"},
        {"limit": "201"},
        {"issued_after": "2024-03-01T09:00:00"},  # naive
        {"issued_after": "last tuesday"},
        {"issued_after": "2024-03-01T09:00:00 07:00"},  # '+' sent unencoded
        {"cursor": "bm90LWEtY3Vyc29y"},
        {"cursor": "!!!"},
        {"issuedAfter": "2024-03-01T09:00:00+07:00"},  # unknown parameter
    ],
)
def test_bad_parameters_are_400_with_a_json_error(invoices_path, params):
    write_jsonl(invoices_path, make_records(3))
    with invoice_api(invoices_path) as url:
        response = httpx.get(f"{url}/api/v1/invoices", params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "bad_request"
    assert body["message"]


def test_page_size_max_is_configurable(invoices_path):
    write_jsonl(invoices_path, make_records(12))
    with invoice_api(invoices_path, page_size_max=5) as url:
        assert httpx.get(f"{url}/api/v1/invoices", params={"limit": 6}).status_code == 400
        got, pages = walk(url, limit=5)
    assert (len(got), pages) == (12, 3)


def test_optional_bearer_token(invoices_path):
    write_jsonl(invoices_path, make_records(1))
    with invoice_api(invoices_path, api_token="erp-secret") as url:
        assert httpx.get(f"{url}/api/v1/invoices").status_code == 401
        ok = httpx.get(f"{url}/api/v1/invoices", headers={"Authorization": "Bearer erp-secret"})
        assert ok.status_code == 200


def test_fail_rate_knob_and_health(invoices_path):
    write_jsonl(invoices_path, make_records(1))
    with invoice_api(invoices_path) as url:
        assert httpx.get(f"{url}/_sandbox/health").status_code == 200
        httpx.post(f"{url}/_sandbox/config", json={"fail_rate": 1.0})
        assert httpx.get(f"{url}/api/v1/invoices").status_code == 503
        httpx.post(f"{url}/_sandbox/reset")
        assert httpx.get(f"{url}/api/v1/invoices").status_code == 200


# -- payments over time: clock, overlay, updated_after -----------------------------------


def paid(number: str, at: str, amount: str, status: str = "paid") -> dict:
    return {"number": number, "paid_at": at, "amount_paid": amount, "payment_status": status}


def by_number(url: str, **params) -> dict[str, dict]:
    got, _ = walk(url, **params)
    return {r["number"]: r for r in got}


def set_clock(url: str, clock: str | None) -> None:
    response = httpx.post(f"{url}/_sandbox/config", json={"clock": clock})
    assert response.status_code == 200, response.text
    assert response.json()["clock"] == clock


@pytest.fixture
def payments_path(tmp_path):
    return tmp_path / "payments.jsonl"


def test_overlay_follows_the_clock(invoices_path, payments_path):
    records = make_records(3)
    a, b, c = (r["number"] for r in records)
    records[1]["updated_at"] = "2024-04-20T12:00:00+07:00"  # the ERP touched it later on
    write_jsonl(invoices_path, records)
    write_jsonl(
        payments_path,
        [
            paid(a, "2024-04-01T10:00:00+07:00", "100.00", "partial"),
            paid(a, "2024-04-10T10:00:00+07:00", "250.50"),
            paid(b, "2024-04-05T09:30:00+03:00", "9.99", "partial"),
        ],
    )
    with invoice_api(invoices_path, payments_path=payments_path) as url:
        set_clock(url, "2024-03-31T23:59:59+07:00")  # before every event
        body = httpx.get(f"{url}/api/v1/invoices").text
        for record in records:  # served byte for byte as written
            assert json.dumps(record, ensure_ascii=False) in body

        set_clock(url, "2024-04-01T10:00:00+07:00")  # the first event, to the second
        got = by_number(url)
        assert got[a] == {
            **records[0],
            "payment_status": "partial",
            "amount_paid": "100.00",
            "updated_at": "2024-04-01T10:00:00+07:00",
        }
        assert "paid_at" not in got[a]
        assert got[b] == records[1] and got[c] == records[2]

        set_clock(url, "2024-04-30T00:00:00Z")  # after every event
        got = by_number(url)
        assert got[a]["payment_status"] == "paid"
        assert got[a]["amount_paid"] == "250.50"
        assert got[a]["paid_at"] == got[a]["updated_at"] == "2024-04-10T10:00:00+07:00"
        # b's own updated_at is later than its payment: it stays
        assert got[b]["payment_status"] == "partial" and got[b]["amount_paid"] == "9.99"
        assert got[b]["updated_at"] == "2024-04-20T12:00:00+07:00"
        assert got[c] == records[2]

        status = httpx.get(f"{url}/_sandbox/status").json()
        assert status["clock"] == "2024-04-30T00:00:00Z"
        assert status["payments"]["events"] == 3 and status["payments"]["skipped"] == []

        httpx.post(f"{url}/_sandbox/reset")  # the clock goes back to real time
        status = httpx.get(f"{url}/_sandbox/status").json()
        assert status["clock"] is None
        assert datetime.fromisoformat(status["now"]) > datetime(2025, 1, 1, tzinfo=UTC)
        assert by_number(url)[a]["payment_status"] == "paid"  # 2024 is long past


def test_real_time_by_default_and_future_payments_wait(invoices_path, payments_path):
    records = make_records(2)
    write_jsonl(invoices_path, records)
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    write_jsonl(
        payments_path,
        [paid(records[0]["number"], "2024-03-02T10:00:00Z", "1.00", "partial"),
         paid(records[1]["number"], future, "2.00")],
    )  # fmt: skip
    with invoice_api(invoices_path, payments_path=payments_path) as url:
        got = by_number(url)
    assert got[records[0]["number"]]["amount_paid"] == "1.00"
    assert got[records[1]["number"]] == records[1]


@pytest.mark.parametrize("clock", ["2024-04-01T10:00:00", "tomorrow", 5, ""])
def test_clock_must_be_an_instant_with_an_offset(invoices_path, clock):
    write_jsonl(invoices_path, make_records(1))
    with invoice_api(invoices_path) as url:
        response = httpx.post(f"{url}/_sandbox/config", json={"clock": clock})
        assert response.status_code == 400
        assert "clock" in response.json()["message"]
        assert httpx.get(f"{url}/_sandbox/config").json()["clock"] is None


def test_updated_after_filters_on_the_effective_update(invoices_path, payments_path):
    records = make_records(40, seed=6)
    for record in records[::7]:
        record["updated_at"] = "2024-05-02T08:00:00+07:00"  # changed in the ERP itself
    records[3]["updated_at"] = "not a date"  # served as is; issued_at stands in
    write_jsonl(invoices_path, records)
    events = [
        paid(r["number"], "2024-05-01T10:00:00+07:00", "5.00", "partial") for r in records[1::5]
    ]
    events.append(paid(records[0]["number"], "2024-04-01T10:00:00+07:00", "5.00"))  # before cut
    write_jsonl(payments_path, events)
    cut = "2024-04-15T00:00:00+07:00"
    changed = {r["number"] for r in records[::7]} | {e["number"] for e in events[:-1]}
    with invoice_api(
        invoices_path, payments_path=payments_path, knobs={"clock": "2024-06-01T00:00:00Z"}
    ) as url:
        got, pages = walk(url, updated_after=cut, limit=3)
        assert [r["number"] for r in got] == [
            r["number"] for r in sorted(records, key=lambda r: (instant(r), r["number"]))
            if r["number"] in changed
        ]  # fmt: skip
        assert pages == -(-len(changed) // 3)  # no empty last page
        # the instant counts, not how it is written; strictly after
        assert {r["number"] for r in walk(url, updated_after="2024-05-01T03:00:00Z")[0]} == {
            r["number"] for r in records[::7]
        }
        # combined with issued_after, both must hold
        issued_cut = (BASE + timedelta(minutes=10)).isoformat()
        both = {r["number"] for r in walk(url, updated_after=cut, issued_after=issued_cut)[0]}
        assert both == {r["number"] for r in records if r["number"] in changed} & {
            r["number"] for r in records if instant(r) > BASE + timedelta(minutes=10)
        }
        assert 0 < len(both) < len(changed)
        # an earlier clock: the payments have not happened yet
        set_clock(url, "2024-04-20T00:00:00+07:00")
        assert {r["number"] for r in walk(url, updated_after=cut)[0]} == {
            r["number"] for r in records[::7]
        }


def test_updated_after_is_kept_in_the_cursor(invoices_path, payments_path):
    records = make_records(30, seed=7)
    write_jsonl(invoices_path, records)
    write_jsonl(
        payments_path, [paid(r["number"], "2024-05-01T10:00:00Z", "1.00") for r in records[::2]]
    )
    cut = "2024-04-01T00:00:00Z"
    with invoice_api(
        invoices_path, payments_path=payments_path, knobs={"clock": "2024-06-01T00:00:00Z"}
    ) as url:
        first = httpx.get(f"{url}/api/v1/invoices", params={"updated_after": cut, "limit": 4})
        cursor = first.json()["next_cursor"]
        assert cursor
        same = httpx.get(
            f"{url}/api/v1/invoices", params={"updated_after": cut, "limit": 4, "cursor": cursor}
        )
        omitted = httpx.get(f"{url}/api/v1/invoices", params={"limit": 4, "cursor": cursor})
        assert same.status_code == omitted.status_code == 200
        assert same.json() == omitted.json()
        assert all(r["payment_status"] == "paid" for r in omitted.json()["data"])
        other = httpx.get(
            f"{url}/api/v1/invoices",
            params={"updated_after": "2024-04-02T00:00:00Z", "limit": 4, "cursor": cursor},
        )
        assert other.status_code == 400
        assert "updated_after" in other.json()["message"]
        # a walk started without updated_after cannot gain one half way
        plain = httpx.get(f"{url}/api/v1/invoices", params={"limit": 4}).json()["next_cursor"]
        added = httpx.get(f"{url}/api/v1/invoices", params={"updated_after": cut, "cursor": plain})
        assert added.status_code == 400
        got, _ = walk(url, updated_after=cut, limit=4)
    assert sorted(r["number"] for r in got) == sorted(r["number"] for r in records[::2])


def test_runtime_payment_and_reset(invoices_path, payments_path):
    records = make_records(2)
    number = records[0]["number"]
    write_jsonl(invoices_path, records)
    write_jsonl(payments_path, [paid(number, "2024-04-01T10:00:00+07:00", "10.00", "partial")])
    with invoice_api(
        invoices_path, payments_path=payments_path, knobs={"clock": "2024-05-01T00:00:00Z"}
    ) as url:
        response = httpx.post(
            f"{url}/_sandbox/payments", json=paid(number, "2024-04-20T10:00:00+07:00", "99.00")
        )
        assert response.status_code == 201, response.text
        assert response.json()["known_invoice"] is True
        assert by_number(url)[number]["payment_status"] == "paid"
        status = httpx.get(f"{url}/_sandbox/status").json()["payments"]
        assert (status["events"], status["file_events"], status["runtime_events"]) == (2, 1, 1)
        # "the buyer pays now": no paid_at means the clock's now
        other = records[1]["number"]
        now = httpx.post(
            f"{url}/_sandbox/payments",
            json={"number": other, "amount_paid": "3.00", "payment_status": "partial"},
        )
        assert now.status_code == 201
        served = by_number(url)[other]
        assert served["amount_paid"] == "3.00"
        assert datetime.fromisoformat(served["updated_at"]) == datetime(2024, 5, 1, tzinfo=UTC)

        httpx.post(f"{url}/_sandbox/reset")  # drops runtime events and the clock
        set_clock(url, "2024-05-01T00:00:00Z")
        got = by_number(url)
        assert got[number]["payment_status"] == "partial"  # the file's event still holds
        assert got[other] == records[1]
        assert httpx.get(f"{url}/_sandbox/status").json()["payments"]["runtime_events"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"paid_at": "2024-04-01T10:00:00Z", "amount_paid": "1.00", "payment_status": "paid"},
        {"number": "INV-00000", "paid_at": "2024-04-01T10:00:00Z", "amount_paid": 1.0,
         "payment_status": "paid"},
        {"number": "INV-00000", "paid_at": "2024-04-01T10:00:00Z", "amount_paid": "-1.00",
         "payment_status": "paid"},
        {"number": "INV-00000", "paid_at": "2024-04-01T10:00:00", "amount_paid": "1.00",
         "payment_status": "paid"},
        {"number": "INV-00000", "paid_at": "2024-04-01T10:00:00Z", "amount_paid": "1.00",
         "payment_status": "settled"},
        {"number": "INV-00000", "paidAt": "2024-04-01T10:00:00Z", "amount_paid": "1.00",
         "payment_status": "paid"},
        ["not", "an", "object"],
    ],
)  # fmt: skip
def test_bad_runtime_payment_is_400(invoices_path, body):
    write_jsonl(invoices_path, make_records(1))
    with invoice_api(invoices_path) as url:
        response = httpx.post(f"{url}/_sandbox/payments", json=body)
        assert response.status_code == 400
        assert response.json()["error"] == "bad_payment" and response.json()["message"]
        assert httpx.get(f"{url}/_sandbox/status").json()["payments"]["events"] == 0


def test_bad_payment_lines_are_skipped_and_reported(invoices_path, payments_path):
    records = make_records(2)
    a, b = records[0]["number"], records[1]["number"]
    write_jsonl(invoices_path, records)
    lines = [
        json.dumps(paid(a, "2024-04-01T10:00:00Z", "1.00")),
        "{not json",
        json.dumps(paid(b, "2024-04-01T10:00:00", "1.00")),  # no offset
        json.dumps({**paid(b, "2024-04-01T10:00:00Z", "1.00"), "amount_paid": 1.0}),  # float
        "",
        json.dumps(paid(b, "2024-04-01T10:00:00Z", "1.00", "unpaid")),
    ]
    payments_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with invoice_api(
        invoices_path, payments_path=payments_path, knobs={"clock": "2024-05-01T00:00:00Z"}
    ) as url:
        got = by_number(url)
        status = httpx.get(f"{url}/_sandbox/status").json()["payments"]
    assert got[a]["payment_status"] == "paid" and got[b] == records[1]
    assert status["events"] == 1
    assert [s["line"] for s in status["skipped"]] == [2, 3, 4, 6]
    assert all(s["reason"] for s in status["skipped"])


def test_payments_file_is_reread_when_it_changes(invoices_path, payments_path):
    records = make_records(2)
    number = records[0]["number"]
    write_jsonl(invoices_path, records)
    with invoice_api(
        invoices_path, payments_path=payments_path, knobs={"clock": "2024-05-01T00:00:00Z"}
    ) as url:
        assert httpx.get(f"{url}/_sandbox/status").json()["payments"]["exists"] is False
        assert by_number(url)[number] == records[0]  # no file yet: no events
        write_jsonl(payments_path, [paid(number, "2024-04-01T10:00:00Z", "1.00", "partial")])
        assert by_number(url)[number]["amount_paid"] == "1.00"
        write_jsonl(payments_path, [paid(number, "2024-04-02T10:00:00Z", "2.00")], mode="a")
        os.utime(payments_path, ns=(0, os.stat(payments_path).st_mtime_ns + 1_000_000))
        assert by_number(url)[number]["amount_paid"] == "2.00"
        status = httpx.get(f"{url}/_sandbox/status").json()["payments"]
        assert (status["exists"], status["events"]) == (True, 2)
        payments_path.unlink()
        assert by_number(url)[number] == records[0]
