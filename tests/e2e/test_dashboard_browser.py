"""The Send to Buyer dashboard as a person uses it: real Chromium, real ``streamlit run``,
the nightly flow's ledger, the sandboxes; every step screenshotted to ``test-artifacts/``.

The page's actions run the Prefect flows of ``flows/actions.py`` inside the Streamlit
process, against this session's Prefect test server. What the page did is checked where
it lands: the SMS gateway sandbox (what was really sent), the mail relay sandbox, the
document store, the ledger.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from playwright.sync_api import Browser, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from courier.ledger import Ledger
from courier.sample_data import generate_invoices
from flows.nightly import nightly_send
from tests.support.browser import (
    Dashboard,
    LiveStack,
    StreamlitApp,
    artifacts_for,
    chromium,
    live_stack,
    streamlit_app,
    wait_until_idle,
)

INVOICES = 40
#: A Thai mobile number nobody in the sample data has.
NEW_NUMBER_RAW = "081-555-0142"
NEW_NUMBER_E164 = "+66815550142"


@dataclass
class Session:
    stack: LiveStack
    app: StreamlitApp
    browser: Browser


@pytest.fixture(scope="module")
def session(prefect_harness: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    """One stack, one nightly run, one dashboard and one browser for the module; each test
    works on its own invoices and measures what it changed."""
    tmp_path = tmp_path_factory.mktemp("dashboard-browser")
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        live_stack(tmp_path, monkeypatch, INVOICES) as stack,
    ):
        # The night's run pulls and stores every document but its budget refuses to send
        # (the page's "Send All" skips what was already sent today): people send here.
        monkeypatch.setenv("COURIER_RUN_BUDGET", "0")
        summary = nightly_send()
        monkeypatch.delenv("COURIER_RUN_BUDGET")
        assert summary["invoices"] == INVOICES and summary["run_sms_sent"] == 0, summary
        assert summary["refused"], summary
        log_path = artifacts_for("dashboard-browser-streamlit") / "streamlit.log"
        with (
            streamlit_app(stack.dashboard_env(), cwd=tmp_path, log_path=log_path) as app,
            chromium() as browser,
        ):
            yield Session(stack, app, browser)


@pytest.fixture
def ui(session: Session, request: pytest.FixtureRequest) -> Iterator[Dashboard]:
    context = session.browser.new_context(
        viewport={"width": 1400, "height": 1000}, accept_downloads=True
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    dashboard = Dashboard(page, session.app, artifacts_for(request.node.name))
    try:
        dashboard.open()
        yield dashboard
        dashboard.assert_no_problems()
    finally:
        dashboard.shot("end")
        context.close()


# -- reading the outcome where it lands ---------------------------------------------------


def rows(session: Session, sql: str, *params: Any) -> list[tuple]:
    """Read the ledger as the product's readers do: the dashboard's process may hold it
    for a moment (a rerun's reads), so wait for it (bounded) instead of failing at once."""
    with Ledger(session.stack.ledger_path).connect(read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def gateway(session: Session) -> list[dict[str, Any]]:
    return session.stack.sms.recorded()


#: Invoices a test of this module already acted on (each test takes fresh ones).
_TAKEN: set[str] = set()


def pick(session: Session, where: str) -> str:
    """An invoice matching ``where`` that no other test of this module used."""
    for (number,) in rows(
        session, f"SELECT invoice_number FROM invoice_status WHERE {where} ORDER BY 1"
    ):
        if number not in _TAKEN:
            _TAKEN.add(number)
            return str(number)
    raise AssertionError(f"no invoice left with {where}")


def notice(ui: Dashboard, pattern: str) -> str:
    """The text of the success / warning / info box matching ``pattern`` (waits for it)."""
    box = ui.page.locator('[data-testid="stAlert"]').filter(has_text=re.compile(pattern)).first
    try:
        expect(box).to_be_visible(timeout=60_000)
    except AssertionError as error:
        ui.shot("no-notice")
        shown = [a.inner_text() for a in ui.page.locator('[data-testid="stAlert"]').all()]
        status = [s.inner_text() for s in ui.page.locator('[data-testid="stExpander"]').all()]
        errors = [line for line in ui.app.log_tail(20_000).splitlines() if "Error" in line]
        raise AssertionError(
            f"no notice matching {pattern!r}; the page shows alerts {shown}, status boxes "
            f"{status}; the dashboard logged: {errors[-5:]}"
        ) from error
    ui.shot("notice")
    return box.inner_text()


def what_happened(session: Session, number: str, sent_before: int, text: str) -> str:
    """For a failing send test: the notice, the invoice's outbox rows and what the
    gateway took since, so one CI log says which step went wrong."""
    outbox = rows(
        session,
        "SELECT purpose, status, provider_sid, error_reason, attempts, run_id FROM messages"
        " WHERE invoice_number = ? ORDER BY created_at",
        number,
    )
    charged = rows(
        session,
        "SELECT purpose, amount, provider_sid FROM charges WHERE invoice_number = ?",
        number,
    )
    taken = [(m.get("sid"), m.get("status")) for m in gateway(session)[sent_before:]]
    logged = [
        line
        for line in session.app.log_tail(20_000).splitlines()
        if ("rror" in line or "WARNING" in line) and "No runtime found" not in line
    ]
    return (
        f"notice {text!r}; outbox {outbox}; charges {charged}; the gateway took {taken};"
        f" the dashboard logged {logged[-8:]}"
    )


def manual_charges(session: Session, number: str) -> int:
    """How many SMS sent from the dashboard (``manual:<request>``) ``number`` was charged."""
    return len(
        rows(
            session,
            "SELECT 1 FROM charges WHERE invoice_number = ? AND purpose LIKE 'manual:%'",
            number,
        )
    )


def sendable(session: Session) -> str:
    return pick(
        session,
        "phone_status = 'ok' AND document_status = 'uploaded' AND pdf_url IS NOT NULL",
    )


# -- the tests ------------------------------------------------------------------------------


# First in the module, on purpose: this test has its own stack (with the mail relay) and
# its own browser, and its nightly run needs this thread free of the module's browser (a
# sync Playwright runs an event loop here). Pytest runs a module's tests in file order and
# starts the module's ``session`` at its first user, so the order is fixed, not by chance.

#: A buyer address the e-mail rules refuse (no dot in the domain): "Invalid e-mail address".
INVALID_ADDRESS = "ap123@example"


@pytest.fixture
def email_ui(
    prefect_harness: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[Dashboard, LiveStack]]:
    """Its own stack with the mail relay and e-mail configured, after one nightly run that
    texted and e-mailed every buyer it could; one invoice's address made invalid."""
    invoices = generate_invoices(count=24)
    spoiled = next(i for i in invoices if i.buyer.email)
    invoices = [
        replace(i, buyer=replace(i.buyer, email=INVALID_ADDRESS)) if i is spoiled else i
        for i in invoices
    ]
    with live_stack(tmp_path, monkeypatch, len(invoices), invoices=invoices, email=True) as stack:
        summary = nightly_send()
        assert summary["email_outcomes"].get("accepted", 0) > 0, summary
        log_path = artifacts_for(f"{request.node.name}-streamlit") / "streamlit.log"
        with (
            streamlit_app(stack.dashboard_env(), cwd=tmp_path, log_path=log_path) as app,
            chromium() as browser,
        ):
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(30_000)
            dashboard = Dashboard(page, app, artifacts_for(request.node.name))
            try:
                dashboard.open()
                yield dashboard, stack
                dashboard.assert_no_problems()
            finally:
                dashboard.shot("end")
                context.close()


def email_cell(ui: Dashboard, number: str) -> str:
    """The E-mail cell of ``number``'s row. At 1400 px the grid ends inside the SMS column
    and paints only the columns in view, so scroll right first, as a person would."""
    ui.search(number)
    assert [r["Invoice"] for r in ui.visible_rows()] == [number]
    box = ui.table().bounding_box()
    assert box is not None, "the table is not on screen"
    ui.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    ui.page.mouse.wheel(300, 0)
    header = ui.table().locator('[role="columnheader"]').filter(has_text=re.compile("^E-mail$"))
    expect(header).to_have_count(1)
    ui.shot(f"email-of-{number}")
    headers = ui.header_names()
    assert headers.index("E-mail") == headers.index("SMS") + 1, headers
    # By the grid's column index: scrolled, its headers and cells no longer pair by position.
    column = header.get_attribute("aria-colindex")
    (cell,) = ui.table().locator(f'[role="gridcell"][aria-colindex="{column}"]').all()
    return (cell.text_content() or "").strip()


def ledger_rows(stack: LiveStack, sql: str) -> list[tuple]:
    with Ledger(stack.ledger_path).connect(read_only=True) as con:  # waits, as ``rows``
        return con.execute(sql).fetchall()


def test_the_email_column_and_send_all_by_email(email_ui: tuple[Dashboard, LiveStack]) -> None:
    ui, stack = email_ui
    addresses = dict(
        ledger_rows(
            stack, "SELECT invoice_number, buyer_email FROM invoices WHERE email_status = 'ok'"
        )
    )
    (invalid,) = ledger_rows(
        stack, "SELECT invoice_number FROM invoices WHERE email_status = 'invalid'"
    )[0]
    missing = ledger_rows(
        stack, "SELECT min(invoice_number) FROM invoices WHERE email_status = 'missing'"
    )[0][0]
    emailed = min(addresses)

    # The night's e-mail: ✓, when, and the address masked (never the address itself).
    cell = email_cell(ui, emailed)
    assert re.fullmatch(r"✓ \d{4}-\d\d-\d\d \d\d:\d\d · \w•••@•••\.\w+", cell), cell
    assert addresses[emailed] not in ui.page.locator("body").inner_text()
    assert email_cell(ui, invalid) == "✗ Invalid e-mail address · •••"
    assert email_cell(ui, missing) == "✗ No e-mail address"
    ui.select_row(0)  # no address: the row cannot be e-mailed, and says why
    expect(ui.button("Send by e-mail")).to_be_disabled()
    expect(ui.page.get_by_text("Not by e-mail: No e-mail address")).to_be_visible()

    # "Send All" by e-mail, every invoice: the preview's e-mail count is what goes.
    ui.search("")
    mails_before, sms_before = len(stack.smtp.messages()), len(stack.sms.recorded())
    ui.click("Send All")
    dialog = ui.dialog("Send All")
    dialog.get_by_text("E-mail", exact=True).click()
    wait_until_idle(ui.page)
    ui.shot("preview-by-email")
    assert _metric(dialog, "E-mails") == str(len(addresses))
    assert _metric(dialog, "Recipients") == str(len(addresses))
    skipped = dialog.locator('[data-testid="stDataFrame"]').first
    expect(skipped).to_contain_text("No e-mail address")
    expect(skipped).to_contain_text("Invalid e-mail address")
    ui.click("Confirm and send", dialog)
    text = notice(ui, "e-mails? sent")
    assert f"{len(addresses)} e-mails sent" in text and "(equal)" in text, text

    new_mail = stack.smtp.messages()[mails_before:]
    assert sorted(m["rcpt_tos"][0] for m in new_mail) == sorted(addresses.values())
    assert len(stack.sms.recorded()) == sms_before, "an e-mail-only send texts nobody"


def test_fix_a_wrong_number_then_send_the_sms(ui: Dashboard, session: Session) -> None:
    number = pick(
        session,
        "phone_status = 'invalid' AND buyer_country = 'TH' AND document_status = 'uploaded'",
    )
    before = len(gateway(session))

    ui.select_invoice(number)
    row = ui.visible_rows()[0]
    assert "invalid" in " ".join(row.values()).lower() or "not sent" in row["SMS"], row
    ui.click("Edit phone")
    dialog = ui.dialog("Edit telephone number")
    field = dialog.get_by_label("Telephone number")
    field.fill(NEW_NUMBER_RAW)
    field.press("Tab")
    wait_until_idle(ui.page)
    ui.shot("typed-new-number")
    expect(dialog.get_by_text(NEW_NUMBER_E164)).to_be_visible()  # "texted as +66..."
    ui.click("Update", dialog)
    assert "updated" in notice(ui, f"Telephone number of {number} updated")

    # The ledger has the new number and who changed it; the table shows it masked.
    assert rows(
        session, "SELECT phone_e164, phone_status FROM invoices WHERE invoice_number = ?", number
    ) == [(NEW_NUMBER_E164, "ok")]
    assert rows(session, "SELECT new_raw FROM phone_edits WHERE invoice_number = ?", number) == [
        (NEW_NUMBER_RAW,)
    ]
    shown = ui.first_row_once(lambda row: row["Phone"].endswith("142"))
    assert shown["Invoice"] == number, shown
    assert "5550142" not in shown["Phone"]

    if "1 selected" not in ui.page.locator("body").inner_text():
        ui.select_row(0)
    ui.click("Send SMS")
    assert "1 SMS sent" in notice(ui, "SMS sent")

    sent = gateway(session)[before:]
    assert [m["to"] for m in sent] == [NEW_NUMBER_E164]
    charges = rows(
        session,
        "SELECT provider_sid, requested_by FROM charges WHERE invoice_number = ? "
        "AND purpose LIKE 'manual:%'",
        number,
    )
    assert [c[0] for c in charges] == [sent[0]["sid"]]
    assert charges[0][1].endswith("@localhost")  # open access records who pressed


def test_send_all_charges_exactly_the_previewed_cost(ui: Dashboard, session: Session) -> None:
    chosen = [sendable(session) for _ in range(3)]
    before = len(gateway(session))
    charged_before = {r[0] for r in rows(session, "SELECT idempotency_key FROM charges")}

    # Narrow the table to the three invoices by ticking them, then "Send All by SMS".
    ui.search(chosen[0][:4])  # the seller prefix: several rows
    shown = [r["Invoice"] for r in ui.visible_rows()]
    for number in chosen:
        if number not in shown:
            pytest.fail(f"{number} is not among the first rows shown: {shown}")
        ui.select_row(shown.index(number))
    ui.click("Send All by SMS")
    dialog = ui.dialog("Send All by SMS")
    template = dialog.get_by_label("Message template")
    template.fill("ใบแจ้งหนี้ {number} จาก {seller}: {amount} {currency} {link}")
    template.press("Control+Enter")
    wait_until_idle(ui.page)
    ui.shot("preview")
    recipients = _metric(dialog, "Recipients")
    total_text = _metric(dialog, "Total cost")
    match = re.fullmatch(r"([0-9.]+) ([A-Z]{3})", total_text)
    assert match, total_text
    preview_total = Decimal(match.group(1))
    assert recipients == "3" and preview_total > 0, (recipients, total_text)

    ui.click("Confirm and send", dialog)
    text = notice(ui, "SMS sent")
    assert "3 SMS sent" in text and "(equal)" in text, text

    sent = gateway(session)[before:]
    assert len(sent) == 3
    assert all(m["body"].startswith("ใบแจ้งหนี้ ") for m in sent)
    new_charges = [
        r
        for r in rows(session, "SELECT idempotency_key, amount, invoice_number FROM charges")
        if r[0] not in charged_before
    ]
    assert sorted(r[2] for r in new_charges) == sorted(chosen)
    exact = rows(
        session,
        "SELECT sum(amount) FROM sms_charges WHERE idempotency_key IN (SELECT unnest(?))",
        [r[0] for r in new_charges],
    )[0][0]
    assert Decimal(exact) == preview_total, (exact, preview_total)


#: A double click (both clicks at once) and impatient second presses while the first
#: one's flow is still running: Streamlit then starts the new run on a new thread while
#: the first thread is still inside its flow (150 ms: both would render the same PDF).
PRESSES = pytest.mark.parametrize(
    "gap_ms", [0, 150, 400], ids=["double-click", "quick-second-press", "second-press"]
)


def press_twice(ui: Dashboard, label: str, gap_ms: int, scope: Any = None) -> bool:
    """Press ``label`` twice, ``gap_ms`` apart; whether the second press landed."""
    button = ui.button(label, scope)
    if gap_ms == 0:
        button.dblclick()
        landed = True
    else:
        button.click()
        ui.page.wait_for_timeout(gap_ms)
        try:
            button.click(timeout=2000, no_wait_after=True)
            landed = True
        except PlaywrightTimeout:  # the first press already finished and closed it
            landed = False
    ui.shot(f"pressed-{label}-twice")
    wait_until_idle(ui.page, timeout_s=90)
    return landed


@PRESSES
def test_pressing_send_sms_twice_sends_once(ui: Dashboard, session: Session, gap_ms: int) -> None:
    number = sendable(session)
    ui.select_invoice(number)
    before = len(gateway(session))
    landed = press_twice(ui, "Send SMS", gap_ms)
    text = notice(ui, "SMS sent|already sent")
    ui.page.wait_for_timeout(1500)  # a second run, if any, would be on its way
    wait_until_idle(ui.page)
    ui.shot("after-second-press")
    assert landed
    assert len(gateway(session)) - before == 1, what_happened(session, number, before, text)
    assert manual_charges(session, number) == 1, what_happened(session, number, before, text)


@PRESSES
def test_pressing_confirm_and_send_twice_sends_once(
    ui: Dashboard, session: Session, gap_ms: int
) -> None:
    number = sendable(session)
    ui.select_invoice(number)
    before = len(gateway(session))
    ui.click("Send All by SMS")
    dialog = ui.dialog("Send All by SMS")
    assert _metric(dialog, "Recipients") == "1"
    landed = press_twice(ui, "Confirm and send", gap_ms, dialog)
    text = notice(ui, "SMS sent|already sent")
    ui.page.wait_for_timeout(1500)
    wait_until_idle(ui.page)
    ui.shot("after-second-press")
    print(f"\nsecond press landed: {landed}; notice: {text}")
    assert len(gateway(session)) - before == 1, what_happened(session, number, before, text)
    assert manual_charges(session, number) == 1, what_happened(session, number, before, text)


def test_view_and_download_the_pdf_and_the_xml(
    ui: Dashboard, session: Session, tmp_path: Path
) -> None:
    number = pick(
        session, "document_status = 'uploaded' AND xml_url IS NOT NULL AND pdf_url IS NOT NULL"
    )
    ui.select_invoice(number)

    ui.click("View PDF")
    expect(ui.page.get_by_text(f"PDF of {number}")).to_be_visible()
    # The viewer is an iframe on the PDF (headless Chromium has no PDF plug-in to paint
    # it, so what the frame loads is checked instead of its pixels).
    frame = ui.page.locator("iframe").last
    expect(frame).to_be_visible()
    ui.shot("pdf-shown")
    src = frame.get_attribute("src") or ""
    shown = ui.page.request.get(urljoin(session.app.url + "/", src))
    assert shown.ok, (src, shown.status)
    assert shown.headers["content-type"].startswith("application/pdf"), shown.headers
    assert number in pdf_text(tmp_path / "shown.pdf", shown.body())

    download = ui.download("Download PDF")
    assert download.suggested_filename == f"{number}.pdf"
    assert number in pdf_text(tmp_path / "downloaded.pdf", Path(download.path()).read_bytes())

    ui.click("View XML")
    expect(ui.page.get_by_text(f"XML of {number}")).to_be_visible()
    expect(ui.page.locator('[data-testid="stCode"]').filter(has_text=number)).to_be_visible()
    download = ui.download("Download XML")
    assert download.suggested_filename == f"{number}.xml"
    xml = Path(download.path()).read_bytes()
    assert xml.lstrip().startswith(b"<?xml") and number.encode() in xml


def test_analytics_downloads_its_tables_as_csv(ui: Dashboard, session: Session) -> None:
    ui.tab("Analytics")
    panel = ui.page.get_by_role("tabpanel").filter(has_text="Delivery funnel").first
    # Each section's own button (by its widget key): all are labelled "Download CSV", and
    # which comes first on a page still drawing is not the test's business.
    for key, first_column in (("csv_funnel", "stage"), ("csv_failures", "reason")):
        download = ui.download("Download CSV", panel.locator(f".st-key-{key}"))
        content = Path(download.path()).read_text(encoding="utf-8-sig")
        header, *lines = content.strip().splitlines()
        assert header.lower().split(",")[0] == first_column, (key, header)
        assert lines, (key, content)


def test_the_reminders_tab_shows_the_rules_and_what_the_next_run_sends(
    ui: Dashboard, session: Session
) -> None:
    ui.tab("Reminders")
    panel = ui.page.get_by_role("tabpanel").filter(has_text="Next run").first
    expect(panel.get_by_text("reminder_rules.yaml; edit the file", exact=False)).to_be_visible()
    expect(panel.get_by_text("No rules file")).to_have_count(0)
    count = _metric(panel, "Reminders the next run sends")
    assert re.fullmatch(r"[\d,]+", count), count
    assert _metric(panel, "Quoted cost")  # "0" or "1.23 USD"
    expect(panel.get_by_role("button", name="Pause reminders")).to_be_enabled()
    expect(panel.get_by_role("button", name="Send now")).to_be_enabled()
    ui.assert_no_problems()


def pdf_text(path: Path, content: bytes) -> str:
    assert content.startswith(b"%PDF"), content[:20]
    path.write_bytes(content)
    return subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def _metric(scope: Any, label: str) -> str:
    box = scope.locator('[data-testid="stMetric"]').filter(has_text=label).first
    expect(box).to_be_visible()
    return str(box.locator('[data-testid="stMetricValue"]').inner_text()).strip()
