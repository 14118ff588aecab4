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
