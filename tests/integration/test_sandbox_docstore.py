"""The sandbox document store over real loopback HTTP: upload, links, expiry, knobs."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support.sandbox_fixtures import DOCS_TOKEN, docstore

AUTH = {"Authorization": f"Bearer {DOCS_TOKEN}"}
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
XML = (
    "<?xml version='1.0' encoding='UTF-8'?><Invoice><ID>INV-1</ID><Note>ใบกำกับภาษี</Note></Invoice>"
)


@pytest.fixture
def docs(tmp_path):
    with docstore(tmp_path / "docs") as url:
        yield url


def put(url, key, content, content_type="application/pdf", headers=None, **params):
    return httpx.put(
        f"{url}/documents/{key}",
        content=content,
        headers={**AUTH, "Content-Type": content_type, **(headers or {})},
        params=params,
    )


def test_put_then_get_returns_identical_bytes_and_type(docs):
    response = put(docs, "2024/INV-0001/invoice.pdf", PDF)
    assert response.status_code == 201
    meta = response.json()
    assert set(meta) == {"key", "url", "sha256", "size", "content_type", "expires_at"}
    assert meta["key"] == "2024/INV-0001/invoice.pdf"
    assert meta["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert meta["size"] == len(PDF)
    assert meta["content_type"] == "application/pdf"
    assert meta["url"].startswith(f"{docs}/d/")
    assert len(meta["url"].rsplit("/", 1)[-1]) >= 32  # token_urlsafe(24) -> 32 chars
    expires = datetime.fromisoformat(meta["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=90))) < timedelta(minutes=1)

    link = httpx.get(meta["url"])  # no credentials: the buyer just clicks
    assert link.status_code == 200
    assert link.content == PDF
    assert link.headers["content-type"] == "application/pdf"
    disposition = link.headers["content-disposition"]
    assert disposition.startswith("inline;")
    assert 'filename="invoice.pdf"' in disposition


def test_xml_keeps_its_content_type_and_bytes(docs):
    data = XML.encode()
    meta = put(docs, "INV-0001.xml", data, "application/xml").json()
    link = httpx.get(meta["url"])
    assert link.content == data
    assert link.headers["content-type"].startswith("application/xml")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {DOCS_TOKEN}"}],
    ids=["none", "wrong-token", "wrong-scheme"],
)
def test_wrong_or_missing_token_is_401(docs, headers):
    response = httpx.put(
        f"{docs}/documents/x.pdf",
        content=PDF,
        headers={"Content-Type": "application/pdf", **headers},
    )
    assert response.status_code == 401
    listing = httpx.get(f"{docs}/_sandbox/documents").json()
    assert listing["links"] == []


def test_fail_uploads_knob_answers_503_and_stores_nothing(docs):
    assert httpx.post(f"{docs}/_sandbox/config", json={"fail_uploads": True}).status_code == 200
    response = put(docs, "x.pdf", PDF)
    assert response.status_code == 503
    assert httpx.get(f"{docs}/_sandbox/documents").json()["links"] == []
    httpx.post(f"{docs}/_sandbox/config", json={"fail_uploads": False})
    assert put(docs, "x.pdf", PDF).status_code == 201


def test_fail_uploads_can_be_set_at_creation(tmp_path):
    with docstore(tmp_path / "docs", {"fail_uploads": True}) as url:
        assert put(url, "x.pdf", PDF).status_code == 503


def test_two_puts_of_one_key_give_two_working_links(docs):
    first = put(docs, "INV-7.pdf", PDF).json()
    second_bytes = PDF.replace(b"1 0 obj", b"2 0 obj")
    second = put(docs, "INV-7.pdf", second_bytes).json()
    assert first["url"] != second["url"]
    assert httpx.get(first["url"]).content == PDF  # old link keeps its own bytes
    assert httpx.get(second["url"]).content == second_bytes
    listing = httpx.get(f"{docs}/_sandbox/documents").json()
    assert [d["sha256"] for d in listing["documents"]] == [second["sha256"]]
    assert len(listing["links"]) == 2


def test_identical_uploads_still_get_distinct_links(docs):
    first = put(docs, "a.pdf", PDF).json()
    second = put(docs, "a.pdf", PDF).json()
    assert first["url"] != second["url"]
    assert httpx.get(first["url"]).content == httpx.get(second["url"]).content == PDF


def test_unknown_link_is_404_and_expired_link_is_410(docs):
    assert httpx.get(f"{docs}/d/not-a-real-token").status_code == 404
    meta = put(docs, "a.pdf", PDF).json()
    token = meta["url"].rsplit("/", 1)[-1]
    assert httpx.post(f"{docs}/_sandbox/links/{token}/expire").status_code == 200
    assert httpx.get(meta["url"]).status_code == 410


def test_expiry_days_can_be_chosen(docs):
    meta = put(docs, "a.pdf", PDF, expires_days=7).json()
    expires = datetime.fromisoformat(meta["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=1)
    via_header = put(docs, "b.pdf", PDF, headers={"X-Expires-Days": "30"}).json()
    expires = datetime.fromisoformat(via_header["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)
    assert put(docs, "c.pdf", PDF, expires_days="soon").status_code == 400
    assert put(docs, "c.pdf", PDF, expires_days=0).status_code == 400


def test_a_short_expiry_really_expires(docs):
    meta = put(docs, "a.pdf", PDF, expires_days=0.5 / 86400).json()  # half a second
    assert httpx.get(meta["url"]).status_code == 200
    time.sleep(0.6)
    assert httpx.get(meta["url"]).status_code == 410


# (httpx would normalise a literal "/../" away, so traversal is sent percent-encoded)
@pytest.mark.parametrize("key", ["a//b.pdf", "a%2F..%2Fb.pdf", "..%2Fb.pdf", "a/b/", "a%01b.pdf"])
def test_bad_keys_are_400(docs, key):
    assert put(docs, key, PDF).status_code == 400


def test_links_survive_a_restart(tmp_path):
    with docstore(tmp_path / "docs") as url:
        meta = put(url, "INV-9.pdf", PDF).json()
        token = meta["url"].rsplit("/", 1)[-1]
    with docstore(tmp_path / "docs") as url:
        link = httpx.get(f"{url}/d/{token}")
        assert link.status_code == 200
        assert link.content == PDF


def test_non_ascii_filename_is_encoded(docs):
    meta = put(docs, "ใบกำกับภาษี.pdf", PDF).json()
    link = httpx.get(meta["url"])
    assert link.status_code == 200
    assert "filename*=utf-8''" in link.headers["content-disposition"]


def test_public_base_url_knob_rewrites_links(docs):
    httpx.post(f"{docs}/_sandbox/config", json={"public_base_url": "https://docs.example.co.th"})
    meta = put(docs, "a.pdf", PDF).json()
    assert meta["url"].startswith("https://docs.example.co.th/d/")


def test_admin_listing_counts_hits_and_reset_clears(docs):
    meta = put(docs, "a.pdf", PDF).json()
    httpx.get(meta["url"])
    httpx.get(meta["url"])
    links = httpx.get(f"{docs}/_sandbox/documents").json()["links"]
    assert links[0]["hits"] == 2
    assert links[0]["url"] == meta["url"]
    assert httpx.post(f"{docs}/_sandbox/reset").status_code == 200
    assert httpx.get(f"{docs}/_sandbox/documents").json() == {"documents": [], "links": []}
    assert httpx.get(meta["url"]).status_code == 404


def test_health(docs):
    assert httpx.get(f"{docs}/_sandbox/health").json() == {"status": "ok", "service": "docstore"}
