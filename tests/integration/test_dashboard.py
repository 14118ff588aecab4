"""The Send to Buyer page (Streamlit AppTest on a real DuckDB ledger and its snapshot):
the table, its filters, the edit dialog's checks, the Send All summary, the documents
viewer and the analytics tab. Actions that run flows are covered in tests/e2e."""

from __future__ import annotations

import secrets
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from courier import actions
from courier.invoice_io import invoice_to_dict
from courier.ledger import AcceptedSend, Ledger
from courier.messages import load_price_table
from courier.pulling import invoice_rows, parse_records
from courier.sample_data import generate_invoices
from courier.settings import load_settings
from courier.snapshot import publish_snapshot, snapshot_exists
from tests.support.sandbox_fixtures import ACCOUNT_SID, AUTH_TOKEN, DOCS_TOKEN
from tests.support.sandbox_fixtures import docstore as docstore_sandbox

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard/app.py")
COUNT = 25


def fake_link() -> str:
    return "http://127.0.0.1:9/d/" + secrets.token_urlsafe(24)  # the store's link shape


def make_ledger(path: Path, documents: bool = True) -> tuple[Ledger, list]:
    ledger = Ledger(path)
    ledger.migrate()
    invoices = generate_invoices(count=COUNT)
    batch = parse_records([invoice_to_dict(i) for i in invoices])
    ledger.insert_invoices(invoice_rows(batch.invoices, "test", datetime.now(UTC)))
    if documents:
        ledger.record_documents(
            [
                {"invoice_number": i.number, "kind": kind, "status": "uploaded", "url": fake_link()}
                for i in invoices
                for kind in ("pdf", "xml")
            ]
        )
    return ledger, invoices


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no stray .env or .streamlit/secrets.toml
    for key, value in {
        "COURIER_LEDGER_PATH": str(tmp_path / "ledger.duckdb"),
        "COURIER_PRICING_PATH": str(REPO / "data/pricing.csv"),
        "COURIER_SMS_ACCOUNT_SID": ACCOUNT_SID,
        "COURIER_SMS_AUTH_TOKEN": AUTH_TOKEN,
        "COURIER_DOCSTORE_TOKEN": DOCS_TOKEN,
        "COURIER_SENDING_HOURS": "off",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("COURIER_OIDC_CLIENT_ID", "COURIER_RUN_BUDGET", "COURIER_SENDERS"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


@pytest.fixture
def page(env):
    ledger, invoices = make_ledger(env / "ledger.duckdb")
    publish_snapshot(ledger)
    return ledger, invoices


def run_app() -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60).run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def table(app: AppTest):
    return app.dataframe[0].value


def button(app: AppTest, label: str):
    matches = [b for b in app.button if b.label == label]
    assert matches, f"no button {label!r} among {[b.label for b in app.button]}"
    return matches[0]


def select_rows(app: AppTest, *positions: int) -> AppTest:
    app.session_state[app.dataframe[0].key] = {
        "selection": {"rows": list(positions), "columns": [], "cells": []}
    }
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def dialog(app: AppTest):
    """The open dialog's block (its elements, e.g. ``dialog(app).dataframe``)."""

    def find(node):
        for child in getattr(node, "children", {}).values():
            if getattr(child, "type", None) == "dialog":
                return child
            found = find(child)
            if found is not None:
                return found
        return None

    block = find(app._tree)  # dialogs live in the tree's "event" block, beside main
    assert block is not None, "no dialog is open"
    return block


def row_of(app: AppTest, number: str) -> int:
    return list(table(app)["Invoice"]).index(number)


def test_the_table_shows_one_row_per_invoice_with_masked_phones(page):
    _, invoices = page
    app = run_app()
    shown = table(app)
    assert list(shown.columns) == [
        "Invoice",
        "Date",
        "Seller",
        "Buyer",
        "Amount",
        "Phone",
        "Document",
        "SMS",
        "Delivery",
        "Sends",
        "Charges",
        "Payment",
        "Reminders",
    ]
    assert len(shown) == COUNT
    assert set(shown["Invoice"]) == {i.number for i in invoices}
    raw_digits = {"".join(c for c in i.buyer_phone_raw if c.isdigit()) for i in invoices}
    phones = " ".join(shown["Phone"])
    assert not any(len(d) >= 9 and d in phones for d in raw_digits)
    assert "✗ Invalid telephone number" in set(shown["SMS"])
    assert set(shown["Document"]) == {"✓"}
    assert app.metric[0].label == "Invoices" and app.metric[0].value == f"{COUNT}"
    assert "Open access: local only" in [c.value for c in app.caption]
    assert any(c.value.startswith(f"{COUNT} invoices.") for c in app.caption)
    assert [t.label for t in app.tabs] == ["Send to Buyer", "Reminders", "Analytics"]
    labels = [b.label for b in app.button]
    for label in ("Edit phone", "Send SMS", "View PDF", "View XML", "Send All by SMS"):
        assert label in labels
    assert button(app, "Send All by SMS").disabled is False
    assert button(app, "Edit phone").disabled  # nothing selected yet


def test_the_sidebar_filters_narrow_the_table(page):
    _, invoices = page
    app = run_app()
    assert [w.label for w in app.sidebar.multiselect] == ["Seller", "SMS status", "Reason"]
    assert app.sidebar.date_input[0].label == "Issued between"
    assert app.sidebar.text_input[0].label == "Search"

    seller = invoices[0].seller.name
    app.sidebar.multiselect[0].select(seller).run()
    assert set(table(app)["Seller"]) == {seller}
    assert len(table(app)) == sum(i.seller.name == seller for i in invoices)
    app.sidebar.multiselect[0].unselect(seller).run()

    app.sidebar.multiselect[2].select("Invalid telephone number").run()
    assert set(table(app)["SMS"]) == {"✗ Invalid telephone number"}
    app.sidebar.multiselect[2].unselect("Invalid telephone number").run()

    app.sidebar.multiselect[1].select("sent").run()
    assert table(app).empty  # nothing was sent
    assert app.sidebar.multiselect[1].options == [
        "Sent",
        "Failed",
        "Not sent",
        "Waiting",
        "Sending",
        "Retrying",
        "Unknown",
    ]
    app.sidebar.multiselect[1].unselect("sent").run()

    target = invoices[3]
    app.sidebar.text_input[0].input(target.number.lower()).run()
    assert list(table(app)["Invoice"]) == [target.number]
    app.sidebar.text_input[0].input(target.buyer.name[:6]).run()
    assert target.number in set(table(app)["Invoice"])
    app.sidebar.text_input[0].input("").run()

    day = min(i.issued_at for i in invoices).astimezone(ZoneInfo("Asia/Bangkok")).date()
    app.sidebar.date_input[0].set_value((day, day)).run()
    assert 0 < len(table(app)) < COUNT
    assert set(table(app)["Date"]) == {day.isoformat()}


def test_the_edit_dialog_checks_the_number_as_it_is_typed(page):
    ledger, invoices = page
    invalid = next(i for i in invoices if i.buyer_phone_raw == "call office")
    app = run_app()
    select_rows(app, row_of(app, invalid.number))
    assert button(app, "Edit phone").disabled is False
    button(app, "Edit phone").click().run()

    field = next(t for t in app.text_input if t.label == "Telephone number")
    assert field.value == "call office"  # the full number, in this dialog only
    assert "Invalid telephone number" in [e.value for e in app.error]
    assert button(app, "Update").disabled

    field.input("02-123-4567").run()
    assert "Not a mobile number" in [e.value for e in app.error]
    assert button(app, "Update").disabled

    next(t for t in app.text_input if t.label == "Telephone number").input("081-234-5678").run()
    assert not [e for e in app.error if "telephone" in e.value.lower()]
    assert button(app, "Update").disabled is False
    assert any("+66812345678" in c.value for c in app.caption)
    with ledger.connect() as con:  # typing writes nothing
        assert con.execute("SELECT count(*) FROM phone_edits").fetchall() == [(0,)]


def metric(app: AppTest, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


def test_send_all_shows_recipients_skips_and_the_exact_total(page):
    ledger, invoices = page
    app = run_app()
    thai_seller = next(i.seller.name for i in invoices if i.seller.country == "TH")
    app.sidebar.multiselect[0].select(thai_seller).run()
    button(app, "Send All by SMS").click().run()
    assert not app.exception

    numbers = [i.number for i in invoices if i.seller.name == thai_seller]
    settings = load_settings()
    expected = actions.preview(
        ledger,
        load_price_table(settings.pricing_path),
        settings,
        numbers,
        app.session_state["send_all_request"],
        "x",
    )
    assert metric(app, "Recipients") == f"{len(expected.recipients):,}"
    assert metric(app, "Total cost") == f"{expected.total:f} USD"
    assert metric(app, "Skipped") == f"{sum(expected.skipped_counts.values()):,}"
    assert expected.total == sum(
        (Decimal("0.03") * i.segments for i in expected.intents), Decimal(0)
    )  # Thai buyers' numbers are Thai: 0.03 USD per segment
    skipped = next(d.value for d in dialog(app).dataframe if "Reason" in d.value.columns)
    assert dict(zip(skipped["Reason"], skipped["Invoices"], strict=True)) == (
        expected.skipped_counts
    )
    assert button(app, "Confirm and send").disabled is False
    assert any("No run budget" in c.value for c in app.caption)

    area = next(t for t in app.text_area if t.label == "Message template")
    area.input("{number} ฿{amount} {link}").run()
    assert any("฿ (U+0E3F)" in c.value for c in app.caption)
    custom = actions.preview(
        ledger,
        load_price_table(settings.pricing_path),
        settings,
        numbers,
        app.session_state["send_all_request"],
        "x",
        template="{number} ฿{amount} {link}",
    )
    assert metric(app, "Total cost") == f"{custom.total:f} USD"

    next(t for t in app.text_area if t.label == "Message template").input("{number} {iban}").run()
    assert any("{iban}" in e.value for e in app.error)
    assert button(app, "Confirm and send").disabled


def test_send_all_over_the_budget_cannot_be_confirmed(page, monkeypatch):
    monkeypatch.setenv("COURIER_RUN_BUDGET", "0.01")
    app = run_app()
    button(app, "Send All by SMS").click().run()
    assert any("over the run budget" in e.value for e in app.error)
    assert button(app, "Confirm and send").disabled


def test_without_sending_settings_the_page_reads_but_cannot_send(page, monkeypatch):
    monkeypatch.delenv("COURIER_SMS_AUTH_TOKEN")
    app = run_app()
    assert len(table(app)) == COUNT
    assert any("Sending is not configured here" in w.value for w in app.warning)
    select_rows(app, 0)
    for label in ("Edit phone", "Send SMS", "Send All by SMS"):
        assert button(app, label).disabled


def test_view_xml_and_pdf_fetch_the_stored_documents(env):
    ledger, invoices = make_ledger(env / "ledger.duckdb", documents=False)
    number = invoices[0].number
    with docstore_sandbox(env / "docs") as docs:
        stored = {}
        for kind, body, mime in (
            ("xml", b"<?xml version='1.0'?><Invoice>TH</Invoice>", "application/xml"),
            ("pdf", b"%PDF-1.7\n%fake\n", "application/pdf"),
        ):
            response = httpx.put(
                f"{docs}/documents/x/{number}.{kind}",
                content=body,
                headers={"Authorization": f"Bearer {DOCS_TOKEN}", "Content-Type": mime},
            )
            stored[kind] = response.json()["url"]
        ledger.record_documents(
            [
                {"invoice_number": number, "kind": k, "status": "uploaded", "url": u}
                for k, u in stored.items()
            ]
        )
        publish_snapshot(ledger)
        app = run_app()
        select_rows(app, row_of(app, number))
        button(app, "View XML").click().run()
        assert "<Invoice>TH</Invoice>" in app.code[0].value
        assert "Download XML" in [b.label for b in app.get("download_button")]
        button(app, "View PDF").click().run()
        assert not app.exception
        assert "Download PDF" in [b.label for b in app.get("download_button")]
        assert any(h.value == f"PDF of {number}" for h in app.subheader)


def test_analytics_shows_the_funnel_failures_charges_and_runs(page):
    ledger, _ = page
    with ledger.connect() as con:
        number = con.execute(
            "SELECT min(invoice_number) FROM invoices WHERE phone_status = 'ok'"
        ).fetchall()[0][0]
    ledger.claim_intent(
        {
            "idempotency_key": f"{number}:on_issue",
            "invoice_number": number,
            "purpose": "on_issue",
            "requested_by": "nightly",
            "to_e164": "+66812345678",
            "destination_country": "TH",
            "body": "hello",
            "encoding": "GSM-7",
            "segments": 2,
            "unit_price": Decimal("0.03"),
            "amount": Decimal("0.06"),
            "currency": "USD",
        }
    )
    ledger.record_outcomes(
        [
            AcceptedSend(
                f"{number}:on_issue",
                "SM1",
                "queued",
                1,
                {
                    "invoice_number": number,
                    "destination_country": "TH",
                    "segments": 2,
                    "unit_price": Decimal("0.03"),
                    "amount": Decimal("0.06"),
                    "currency": "USD",
                    "run_id": "11111111-1111-1111-1111-111111111111",
                },
            )
        ],
        [],
    )
    ledger.start_run("11111111-1111-1111-1111-111111111111", "nightly-send")
    ledger.finish_run("11111111-1111-1111-1111-111111111111", {"run_sms_sent": 1})
    publish_snapshot(ledger)
    app = run_app()
    assert not app.tabs[2].subheader  # lazy: the closed tab does not run
    app.session_state["tab"] = "Analytics"
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    analytics = app.tabs[2]
    headings = [h.value for h in analytics.subheader]
    assert headings == ["Delivery funnel", "Failures by reason", "Charges", "Run history"]
    frames = [d.value for d in analytics.dataframe]
    funnel = frames[0]
    assert list(funnel["Stage"]) == ["Pulled", "Valid phone", "Uploaded", "Sent", "Delivered"]
    assert funnel["Invoices"].iloc[0] == COUNT and funnel["Invoices"].iloc[3] == 1
    charges = next(f for f in frames if "Amount" in f.columns)
    assert list(charges["Amount"]) == ["0.060000"]
    runs = next(f for f in frames if "Flow" in f.columns)
    assert list(runs["Flow"]) == ["nightly-send"]
    downloads = [b.label for b in analytics.get("download_button")]
    assert downloads and set(downloads) == {"Download CSV"}


def test_a_ledger_without_a_snapshot_gets_one(env):
    ledger, _ = make_ledger(env / "ledger.duckdb")
    assert not snapshot_exists(ledger.path)
    app = run_app()
    assert len(table(app)) == COUNT
    assert snapshot_exists(ledger.path)


def test_without_a_ledger_the_page_says_what_to_do(env, monkeypatch):
    monkeypatch.setenv("COURIER_LEDGER_PATH", str(env / "missing.duckdb"))
    app = run_app()
    assert "make demo" in app.info[0].value


def test_sign_in_configured_without_authlib_keeps_the_page_closed(page, monkeypatch):
    for key, value in {
        "COURIER_OIDC_CLIENT_ID": "courier-dashboard",
        "COURIER_OIDC_CLIENT_SECRET": "s3cr3t-value",
        "COURIER_OIDC_SERVER_METADATA_URL": "https://id.example.com/.well-known/openid-configuration",
        "COURIER_OIDC_REDIRECT_URI": "https://courier.example.com/oauth2callback",
        "COURIER_OIDC_COOKIE_SECRET": "a-long-random-cookie-secret",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr("streamlit.auth_util.is_authlib_installed", lambda: False)
    app = run_app()
    assert not app.dataframe
    assert "Authlib" in app.error[0].value
    assert "Open access: local only" not in [c.value for c in app.caption]


def test_incomplete_sign_in_settings_are_refused(page, monkeypatch):
    monkeypatch.setenv("COURIER_OIDC_CLIENT_ID", "courier-dashboard")
    app = run_app()
    assert not app.dataframe
    assert "COURIER_OIDC_CLIENT_SECRET" in app.error[0].value


OIDC_ENV = {
    "COURIER_OIDC_CLIENT_ID": "courier-dashboard",
    "COURIER_OIDC_CLIENT_SECRET": "s3cr3t-value",
    "COURIER_OIDC_SERVER_METADATA_URL": "https://id.example.com/.well-known/openid-configuration",
    "COURIER_OIDC_REDIRECT_URI": "https://courier.example.com/oauth2callback",
    "COURIER_OIDC_COOKIE_SECRET": "a-long-random-cookie-secret",
    "COURIER_SENDERS": "Finance@Example.com, ops@example.com",
}


def signed_in_app(monkeypatch, user: dict) -> AppTest:
    for key, value in OIDC_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr("streamlit.auth_util.is_authlib_installed", lambda: True)
    app = AppTest.from_file(APP, default_timeout=60)
    # What the page would install from COURIER_OIDC_* (kept inside this AppTest).
    app.secrets = {"auth": {"client_id": "courier-dashboard"}}
    app.user = user
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def test_signed_out_visitors_see_only_the_log_in_button(page, monkeypatch):
    app = signed_in_app(monkeypatch, {"is_logged_in": False})
    assert [b.label for b in app.button] == ["Log in"]
    assert not app.dataframe


def test_a_signed_in_sender_may_act_and_others_only_look(page, monkeypatch):
    sender = signed_in_app(monkeypatch, {"is_logged_in": True, "email": "finance@example.com"})
    assert len(table(sender)) == COUNT
    assert "Signed in as finance@example.com" in [c.value for c in sender.sidebar.caption]
    assert "Open access: local only" not in [c.value for c in sender.caption]
    assert button(sender, "Send All by SMS").disabled is False

    viewer = signed_in_app(monkeypatch, {"is_logged_in": True, "email": "someone@example.com"})
    assert len(table(viewer)) == COUNT
    select_rows(viewer, 0)
    for label in ("Edit phone", "Send SMS", "Send All by SMS"):
        assert button(viewer, label).disabled
    assert button(viewer, "Send SMS").help.startswith("Only people on COURIER_SENDERS")


def test_filters_keep_their_values_across_the_tabs(page):
    _, invoices = page
    app = run_app()
    seller = invoices[0].seller.name
    app.sidebar.multiselect[0].select(seller).run()
    app.session_state["tab"] = "Analytics"
    app.run()
    assert app.sidebar.multiselect[0].value == [seller]
    app.session_state["tab"] = "Send to Buyer"
    app.run()
    assert set(table(app)["Seller"]) == {seller}


def test_a_busy_ledger_is_said_not_crashed_on(page, monkeypatch):
    from courier.ledger import LedgerBusy

    def busy(*args, **kwargs):
        raise LedgerBusy("held by the nightly run")

    monkeypatch.setattr("courier.actions.preview", busy)
    monkeypatch.setattr("courier.actions.current_phone", busy)
    app = run_app()
    button(app, "Send All by SMS").click().run()
    assert not app.exception
    assert any("writing the ledger" in w.value for w in app.warning)
    select_rows(app, 0)
    button(app, "Edit phone").click().run()
    assert not app.exception
    assert any("writing the ledger" in w.value for w in app.warning)


def test_the_page_runs_one_action_flow_at_a_time(monkeypatch):
    """A second press while the first press's flow runs starts a new script run on a new
    thread (Streamlit's fast reruns), and two people may press at once: the page's flows
    (which share the process's render pool and ledger) take turns."""
    import flows.actions
    from dashboard import send_to_buyer

    guard = threading.Lock()
    running = 0
    seen_at_once: list[int] = []

    def flow(**kwargs: object) -> dict[str, object]:
        nonlocal running
        with guard:
            running += 1
            seen_at_once.append(running)
        time.sleep(0.2)
        with guard:
            running -= 1
        return {"result": {}}

    monkeypatch.setattr(flows.actions, "send_sms", flow)
    monkeypatch.setattr(flows.actions, "edit_phone", flow)
    presses = [
        threading.Thread(target=send_to_buyer._flow_send_sms, args=(["A"], "r1", "u", None)),
        threading.Thread(target=send_to_buyer._flow_send_sms, args=(["A"], "r1", "u", None)),
        threading.Thread(target=send_to_buyer._flow_edit_phone, args=("A", "0812345678", "u")),
    ]
    for press in presses:
        press.start()
    for press in presses:
        press.join(10)
    assert seen_at_once == [1, 1, 1]
