"""Drive the real dashboard in a real browser: ``streamlit run`` + Debian's Chromium.

Playwright's own browser download is never used (``playwright install`` is not run): the
Chromium that ``scripts/system-deps.sh`` installs is launched by path. Typical use::

    with streamlit_app(env, cwd=tmp_path) as app, chromium() as browser:
        ui = Dashboard(browser.new_page(), app, artifacts_for("test_name"))
        ui.open()
        ui.shot("opened")

Screenshots (and the Streamlit log) go to ``test-artifacts/<test>/`` (gitignored).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Locator, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from courier.sample_data import generate_invoices, write_jsonl
from tests.support.processes import stop_process
from tests.support.sandbox_fixtures import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    DOCS_TOKEN,
    SmsSandbox,
    smtp_sandbox,
)
from tests.support.sandbox_fixtures import docstore as docstore_sandbox
from tests.support.sandbox_fixtures import invoice_api as invoice_api_sandbox

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "dashboard/app.py"
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("COURIER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

#: An invoice number as generated (``TH1-2026-001201``): what the first table cell shows.
INVOICE_NUMBER = re.compile(r"^[A-Z]{2}\d-\d{4}-\d{6,7}$")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def artifacts_for(name: str) -> Path:
    """A fresh ``test-artifacts/<name>/`` (old screenshots of the same test removed)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120]
    target = ARTIFACTS / safe
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True, exist_ok=True)
    return target


@dataclass
class StreamlitApp:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


@contextlib.contextmanager
def streamlit_app(
    env: Mapping[str, str],
    *,
    cwd: Path,
    log_path: Path | None = None,
    app: Path = APP,
    startup_timeout_s: float = 60.0,
) -> Iterator[StreamlitApp]:
    """``streamlit run`` the dashboard on a free loopback port with ``env`` on top of ours.

    ``cwd`` should be a scratch folder (no stray ``.env`` from the checkout). The process
    is stopped (SIGTERM, then SIGKILL) on exit; its output is kept in ``log_path``.
    """
    port = free_port()
    log_path = log_path or cwd / "streamlit.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = {
        **os.environ,
        **env,
        "PYTHONUNBUFFERED": "1",
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    }
    command = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--browser.gatherUsageStats", "false",
        "--global.developmentMode", "false",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=cwd, env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    started = StreamlitApp(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_healthy(started, startup_timeout_s)
        yield started
    finally:
        stop_process(process)


def _wait_healthy(app: StreamlitApp, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if app.process.poll() is not None:
            raise RuntimeError(f"streamlit exited ({app.process.returncode}):\n{app.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{app.url}/_stcore/health", timeout=2).text.strip() == "ok":
                return
        time.sleep(0.2)
    raise RuntimeError(f"streamlit not healthy after {timeout_s} s:\n{app.log_tail()}")


@contextlib.contextmanager
def chromium(headless: bool = True) -> Iterator[Browser]:
    """Debian's Chromium, launched by path through Playwright."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(
            f"no Chromium at {CHROMIUM}: run scripts/system-deps.sh (installs Debian's chromium)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=headless, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


# -- reading and driving the page -------------------------------------------------------

TABLE = '[data-testid="stDataFrame"]'
#: Words that must never be on the page: a lock error, a traceback, an error box.
PAGE_PROBLEMS = re.compile(
    r"Could not set lock|lock on file|Traceback|Conflicting lock|IO Error", re.IGNORECASE
)


def wait_for_table(page: Page, timeout_s: float = 30.0) -> Locator:
    """Wait until the status table shows an invoice number in a cell; returns the table.

    The grid paints on a canvas and mirrors the rows it paints in an accessible (hidden)
    ``<table role="grid">``: that is what is read here (hence CSS, not ``get_by_role``).
    """
    table = page.locator(TABLE).first
    table.wait_for(state="visible", timeout=timeout_s * 1000)
    cell = table.locator('[role="gridcell"]').filter(has_text=INVOICE_NUMBER).first
    cell.wait_for(state="attached", timeout=timeout_s * 1000)
    return table


IDLE_STATES = ("notRunning", "compilationError")


def script_state(page: Page) -> str:
    """Streamlit's script-run state as the page sees it (``initial``, ``running``,
    ``notRunning``, ``rerunRequested``, ...)."""
    state = page.locator('[data-testid="stApp"]').first.get_attribute("data-test-script-state")
    return state or ""


def wait_until_idle(page: Page, timeout_s: float = 60.0, *, after_action: bool = True) -> None:
    """Wait until Streamlit finished the script run (the app's ``data-test-script-state``).

    After a click the rerun starts a moment later, so first wait (briefly) for it to
    start, unless ``after_action`` is False.
    """
    if after_action:
        with contextlib.suppress(PlaywrightTimeout):
            page.wait_for_function(
                """() => { const app = document.querySelector('[data-testid="stApp"]');
                           return app && app.getAttribute('data-test-script-state')
                                  !== 'notRunning'; }""",
                timeout=700,
            )
    page.wait_for_function(
        """(idle) => {
            const app = document.querySelector('[data-testid="stApp"]');
            return app && idle.includes(app.getAttribute('data-test-script-state'));
        }""",
        arg=list(IDLE_STATES),
        timeout=timeout_s * 1000,
    )


def page_problems(page: Page) -> list[str]:
    """Exceptions and lock errors the page shows (``st.exception`` boxes, error text)."""
    problems = [
        box.inner_text()[:500]
        for box in page.locator('[data-testid="stException"]').all()
        if box.is_visible()
    ]
    text = page.locator("body").inner_text()
    for match in PAGE_PROBLEMS.finditer(text):
        start = max(0, match.start() - 200)
        problems.append(text[start : match.end() + 200])
    return problems


@dataclass
class Dashboard:
    """The Send to Buyer page as a person uses it; screenshots at every step."""

    page: Page
    app: StreamlitApp
    artifacts: Path
    steps: int = field(default=0)

    def shot(self, name: str) -> Path:
        self.steps += 1
        target = self.artifacts / f"{self.steps:02d}-{re.sub(r'[^A-Za-z0-9_-]+', '-', name)}.png"
        with contextlib.suppress(Exception):  # a screenshot never fails the test itself
            self.page.screenshot(path=str(target), full_page=True)
        return target

    def open(self, timeout_s: float = 60.0) -> Locator:
        self.page.goto(self.app.url)
        try:
            table = wait_for_table(self.page, timeout_s)
        except PlaywrightTimeout as error:
            self.shot("table-never-rendered")
            raise AssertionError(
                f"the status table did not render: {page_problems(self.page)}\n"
                f"{self.app.log_tail()}"
            ) from error
        wait_until_idle(self.page, after_action=False)
        self.shot("opened")
        return table

    def assert_no_problems(self) -> None:
        problems = page_problems(self.page)
        if problems:
            self.shot("problem")
        assert not problems, f"the page shows a problem: {problems}\n{self.app.log_tail()}"

    # -- sidebar ---------------------------------------------------------------------

    def sidebar(self) -> Locator:
        return self.page.locator('[data-testid="stSidebar"]')

    def search(self, text: str) -> None:
        """Type into the sidebar's "Search" box and wait for the rerun."""
        box = self.sidebar().get_by_label("Search", exact=True)
        box.fill(text)
        box.press("Enter")
        wait_until_idle(self.page)
        self.page.wait_for_timeout(300)  # the grid repaints after the script run
        self.shot(f"search-{text}")

    # -- tabs, buttons, dialogs ------------------------------------------------------

    def tab(self, label: str) -> None:
        self.page.get_by_role("tab", name=label).click()
        wait_until_idle(self.page)
        self.shot(f"tab-{label}")

    def button(self, label: str, scope: Locator | None = None) -> Locator:
        where = scope if scope is not None else self.page.locator("body")
        return where.get_by_role("button", name=label, exact=True)

    def click(self, label: str, scope: Locator | None = None) -> None:
        self.button(label, scope).click()
        wait_until_idle(self.page)
        self.shot(f"clicked-{label}")

    def dialog(self, title: str, timeout_s: float = 15.0) -> Locator:
        dialog = self.page.get_by_role("dialog").filter(has_text=title)
        try:
            dialog.wait_for(state="visible", timeout=timeout_s * 1000)
        except PlaywrightTimeout as error:
            self.shot(f"no-dialog-{title}")
            raise AssertionError(f'no dialog "{title}" opened') from error
        self.shot(f"dialog-{title}")
        return dialog

    # -- the table -------------------------------------------------------------------

    def table(self) -> Locator:
        return self.page.locator(TABLE).first

    def header_names(self) -> list[str]:
        return [
            (h.text_content() or "").strip()
            for h in self.table().locator('[role="columnheader"]').all()
        ]

    def visible_rows(self, *, wait: bool = True) -> list[dict[str, str]]:
        """The rows the grid renders (its accessible table), keyed by column header;
        with ``wait``, once the script run ended and the grid shows an invoice."""
        if wait:
            wait_until_idle(self.page, after_action=False)
            wait_for_table(self.page)
        headers = self.header_names()
        rows = []
        for row in self.table().locator('[role="row"]').all():
            cells = [
                (c.text_content() or "").strip() for c in row.locator('[role="gridcell"]').all()
            ]
            if cells:
                # The selection column has a header but no text in its cells.
                offset = len(headers) - len(cells)
                rows.append(dict(zip(headers[offset:], cells, strict=False)))
        return rows

    def first_row_once(
        self, holds: Callable[[dict[str, str]], bool], timeout_s: float = 20.0
    ) -> dict[str, str]:
        """The first visible row, once ``holds(row)`` is true (polled until ``timeout_s``).

        After a write the page reruns, and a rerun that another rerun interrupts leaves the
        older table on screen for a moment while the script state already reads idle: a
        person sees the new row a beat later, so the check waits for it the same way.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            rows = self.visible_rows()
            if rows and holds(rows[0]):
                return rows[0]
            if time.monotonic() > deadline:
                self.shot("row-never-updated")
                raise AssertionError(f"after {timeout_s:.0f} s the first row is still {rows[:1]}")
            time.sleep(0.25)

    def select_row(self, index: int = 0) -> None:
        """Tick row ``index`` (0 = first visible row) in the grid's selection column.

        The grid paints on a canvas; its row markers sit at the left edge, one row height
        (35 px by default) per row under a header of the same height.
        """
        box = self.table().bounding_box()
        assert box is not None, "the table is not on screen"
        row_height = 35
        self.page.mouse.click(box["x"] + 20, box["y"] + row_height * (index + 1.5))
        wait_until_idle(self.page)
        self.page.wait_for_timeout(200)
        self.shot(f"selected-row-{index}")

    def select_invoice(self, number: str) -> None:
        """Narrow the table to one invoice with the sidebar search, then tick that row."""
        self.search(number)
        rows = self.visible_rows()
        assert rows and rows[0].get("Invoice") == number, f"search for {number} shows {rows[:3]}"
        self.select_row(0)

    def download(self, label: str, scope: Locator | None = None) -> Any:
        """Click a download button; returns Playwright's ``Download``."""
        with self.page.expect_download(timeout=30_000) as info:
            self.button(label, scope).first.click()
        self.shot(f"downloaded-{label}")
        return info.value


# -- a whole stack for the dashboard to look at -----------------------------------------


@dataclass
class LiveStack:
    """Sandboxes on loopback and the ``COURIER_*`` settings pointing at them (set in this
    process's environment, so flows run here and the dashboard subprocess agree)."""

    ledger_path: Path
    invoices_path: Path
    sms: SmsSandbox
    docstore_url: str
    erp_url: str
    env: dict[str, str]
    smtp: Any = None  # the sandbox mail relay (``SmtpSandbox``) when started with email=True

    def accepted_messages(self) -> list[dict[str, Any]]:
        """What the SMS gateway sandbox accepted (really sent), in order."""
        return self.sms.recorded()

    def dashboard_env(self) -> dict[str, str]:
        """What ``streamlit run`` needs on top of ``os.environ``: the settings, and the
        Prefect API this process uses (under ``prefect_test_harness`` it is not in
        ``os.environ``), so the dashboard's action flows are recorded there too."""
        from prefect.settings import PREFECT_API_URL

        env = dict(self.env)
        api = PREFECT_API_URL.value()
        if api:
            env["PREFECT_API_URL"] = api
        env["PREFECT_LOGGING_LEVEL"] = "WARNING"
        return env


@contextlib.contextmanager
def live_stack(
    tmp_path: Path,
    monkeypatch: Any,
    count: int,
    *,
    batch_size: int = 25,
    sms_knobs: dict[str, Any] | None = None,
    invoices: list[Any] | None = None,
    email: bool = False,
) -> Iterator[LiveStack]:
    """``count`` generated invoices (or the given ``invoices``) behind the ERP sandbox, the
    SMS gateway and document store sandboxes, and the settings (``monkeypatch.setenv``;
    cwd moved to ``tmp_path``). The ERP reports payments posted to ``/_sandbox/payments``.
    ``email``: the sandbox mail relay too, and the e-mail channel configured to use it."""
    invoices_path = tmp_path / "invoices.jsonl"
    write_jsonl(invoices if invoices is not None else generate_invoices(count=count), invoices_path)
    with (
        SmsSandbox.started(tmp_path / "sms", knobs=sms_knobs or {"delivery_delay_s": 0.05}) as sms,
        docstore_sandbox(tmp_path / "docs") as docs_url,
        invoice_api_sandbox(invoices_path, payments_path=tmp_path / "payments.jsonl") as erp_url,
        contextlib.ExitStack() as extras,
    ):
        smtp = extras.enter_context(smtp_sandbox(tmp_path / "smtp")) if email else None
        ledger_path = tmp_path / "ledger.duckdb"
        env = {
            "COURIER_LEDGER_PATH": str(ledger_path),
            "COURIER_PRICING_PATH": str(REPO / "data/pricing.csv"),
            "COURIER_REMINDER_RULES_PATH": str(REPO / "data/reminder_rules.yaml"),
            "COURIER_INVOICE_SOURCE": erp_url,
            "COURIER_SMS_BASE_URL": sms.url,
            "COURIER_SMS_ACCOUNT_SID": ACCOUNT_SID,
            "COURIER_SMS_AUTH_TOKEN": AUTH_TOKEN,
            "COURIER_DOCSTORE_URL": docs_url,
            "COURIER_DOCSTORE_TOKEN": DOCS_TOKEN,
            "COURIER_BATCH_SIZE": str(batch_size),
            "COURIER_SENDING_HOURS": "off",
            "COURIER_RECEIPT_POLL_AFTER_S": "0",
        }
        if smtp is not None:
            env.update(
                COURIER_SMTP_HOST=smtp.host,
                COURIER_SMTP_PORT=str(smtp.port),
                COURIER_SMTP_SECURITY="none",
                COURIER_EMAIL_FROM="Courier Billing <billing@courier.example>",
            )
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.chdir(tmp_path)  # no stray .env from the checkout
        yield LiveStack(ledger_path, invoices_path, sms, docs_url, erp_url, env, smtp)
