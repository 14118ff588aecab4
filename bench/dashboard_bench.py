"""How fast does the Send to Buyer dashboard show a 100k-invoice ledger?

Builds a ledger of ``--count`` invoices (500 generated invoices as templates, multiplied in
SQL with fresh numbers and issue times; documents, messages and charges for most of them),
publishes its snapshot (``courier.snapshot``; timed), then starts the real dashboard
(``streamlit run dashboard/app.py`` on a free loopback port) and measures, in Chromium
driven by Playwright, the time from navigation to the status table showing its first
invoice-number cell. Each run is a fresh browser context (a person opening the page).

    .venv/bin/python bench/dashboard_bench.py [--count 100000] [--runs 7] [--keep DIR]

Target: first render <= 2 s (median and max printed), snapshot publish well under 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import duckdb
from playwright.sync_api import Browser, BrowserContext, ViewportSize

from courier.invoice_io import invoice_to_dict
from courier.ledger import Ledger
from courier.pulling import invoice_rows, parse_records
from courier.sample_data import generate_invoices
from courier.snapshot import publish_snapshot, snapshot_dir
from tests.support.browser import chromium, streamlit_app, wait_for_table

TEMPLATES = 500
TARGET_S = 2.0


def build_ledger(path: Path, count: int, templates: int = TEMPLATES) -> Ledger:
    """A ledger of ``count`` invoices: most uploaded and texted (one charge each), some
    with upload failures, some failed sends, invalid/missing phones as generated."""
    ledger = Ledger(path)
    ledger.migrate()
    batch = parse_records([invoice_to_dict(i) for i in generate_invoices(count=templates)])
    frame = invoice_rows(batch.invoices, "bench", datetime.now(UTC))
    with ledger.connect() as con:
        con.register("template_rows", frame)
        con.execute(
            "CREATE TEMP TABLE tmpl AS SELECT row_number() OVER () - 1 AS t, * FROM template_rows"
        )
        con.unregister("template_rows")
        columns = [
            c for c in frame.columns if c not in ("invoice_number", "issued_at", "record_json")
        ]
        picked = ", ".join(f"tmpl.{c}" for c in columns)
        # New numbers per seller prefix, issue times spread over ~35 days back from now.
        con.execute(
            f"""
            INSERT INTO invoices (invoice_number, issued_at, record_json, {", ".join(columns)})
            WITH base AS (
                SELECT g.i, tmpl.*,
                       split_part(tmpl.invoice_number, '-', 1) || '-2026-'
                           || lpad(CAST(g.i AS VARCHAR), 7, '0') AS new_number
                FROM range(?) g(i) JOIN tmpl ON tmpl.t = g.i % ?
            )
            SELECT new_number, now() - to_seconds(i * 30),
                   replace(record_json, invoice_number, new_number),
                   {picked.replace("tmpl.", "")}
            FROM base tmpl
            """,
            [count, len(frame)],
        )
        # Documents: pdf + xml uploaded for ~97%, the rest failed uploads.
        con.execute(
            """
            INSERT INTO documents (invoice_number, kind, status, url, error, attempts,
                                   uploaded_at, updated_at)
            SELECT invoice_number, kind,
                   CASE WHEN hash(invoice_number) % 33 = 0 THEN 'upload_failed'
                        ELSE 'uploaded' END,
                   CASE WHEN hash(invoice_number) % 33 = 0 THEN NULL
                        ELSE 'http://127.0.0.1:9/d/' || invoice_number || '.' || kind END,
                   CASE WHEN hash(invoice_number) % 33 = 0
                        THEN 'Upload failed: document store unavailable' END,
                   1, now(), now()
            FROM invoices, (VALUES ('pdf'), ('xml')) k(kind)
            """
        )
        # One on-issue SMS per textable invoice with its documents: ~96% accepted.
        con.execute(
            """
            INSERT INTO messages (idempotency_key, invoice_number, purpose, requested_by,
                to_e164, destination_country, body, encoding, segments, unit_price, amount,
                currency, status, provider_sid, provider_status, error_code, error_reason,
                attempts, run_id, created_at, sent_at, updated_at)
            SELECT i.invoice_number || ':on_issue', i.invoice_number, 'on_issue', 'nightly',
                   i.phone_e164, i.buyer_country,
                   i.seller_name || ': invoice ' || i.invoice_number || ' View: https://d/'
                       || i.invoice_number,
                   'GSM-7', 1 + (hash(i.invoice_number) % 2)::INTEGER,
                   p.price, p.price * (1 + hash(i.invoice_number) % 2), 'USD',
                   CASE WHEN hash(i.invoice_number) % 25 = 0 THEN 'failed' ELSE 'accepted' END,
                   'SM' || md5(i.invoice_number),
                   CASE WHEN hash(i.invoice_number) % 25 = 0 THEN NULL ELSE 'delivered' END,
                   CASE WHEN hash(i.invoice_number) % 25 = 0 THEN '21614' END,
                   CASE WHEN hash(i.invoice_number) % 25 = 0 THEN 'Not a mobile number' END,
                   1, 'bench-run', i.issued_at, i.issued_at + INTERVAL 1 MINUTE,
                   i.issued_at + INTERVAL 1 MINUTE
            FROM invoices i
            JOIN (VALUES ('TH', 0.03), ('SA', 0.04), ('EG', 0.05)) p(country, price)
                ON p.country = i.buyer_country
            WHERE i.phone_status = 'ok' AND hash(i.invoice_number) % 33 <> 0
            """
        )
        con.execute(
            """
            INSERT INTO sms_charges (idempotency_key, invoice_number, provider_sid,
                destination_country, segments, unit_price, amount, currency, provider_price,
                run_id, charged_at)
            SELECT idempotency_key, invoice_number, provider_sid, destination_country,
                   segments, unit_price, amount, currency, amount, run_id, sent_at
            FROM messages WHERE status = 'accepted'
            """
        )
        con.execute(
            "INSERT INTO runs SELECT 'bench-run-' || i, 'nightly-send', "
            "now() - to_days(CAST(i AS INTEGER)), now() - to_days(CAST(i AS INTEGER)) "
            "+ INTERVAL 1 HOUR, '{}' FROM range(30) g(i)"
        )
        con.execute("CHECKPOINT")
    return ledger


def counts(path: Path) -> dict[str, int]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {
            table: int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
            for table in ("invoices", "documents", "messages", "sms_charges")
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--publishes", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="build the ledger here and keep it")
    args = parser.parse_args()

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="courier-dash-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "ledger.duckdb"
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)

    started = time.perf_counter()
    ledger = build_ledger(path, args.count)
    print(f"ledger: {counts(path)} built in {time.perf_counter() - started:.1f} s")

    publish_times = []
    for _ in range(args.publishes):
        started = time.perf_counter()
        publish_snapshot(ledger)
        publish_times.append(time.perf_counter() - started)
    sizes = {p.name: p.stat().st_size for p in snapshot_dir(path).glob("*.parquet")}
    print(
        f"snapshot publish ({args.publishes}x): median {statistics.median(publish_times):.3f} s,"
        f" max {max(publish_times):.3f} s; files "
        + ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in sorted(sizes.items()))
    )

    env = {"COURIER_LEDGER_PATH": str(path)}
    log_path = workdir / "streamlit.log"
    with streamlit_app(env, cwd=workdir, log_path=log_path) as app, chromium() as browser:
        warm_up = first_render(browser, app.url)  # Streamlit's imports, the first read
        print(f"warm-up render (cold server): {warm_up:.2f} s")
        # A new visitor: a fresh browser profile, nothing cached (the JS bundle is fetched).
        fresh = [first_render(browser, app.url) for _ in range(args.runs)]
        # A returning visitor: the same profile, a new tab (the bundle comes from the cache).
        context = browser.new_context(viewport=VIEWPORT)
        first_render(browser, app.url, context)
        returning = [first_render(browser, app.url, context) for _ in range(args.runs)]
        context.close()
    report("new visitor (empty browser cache)", fresh)
    report("returning visitor (browser cache warm)", returning)
    one, five, _ = os.getloadavg()
    print(f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs")


VIEWPORT: Final = ViewportSize(width=1600, height=1000)


def first_render(browser: Browser, url: str, context: BrowserContext | None = None) -> float:
    """Seconds from navigation to an invoice number in the table's first rows."""
    own = context is None
    context = context or browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    started = time.perf_counter()
    page.goto(url, wait_until="commit")
    wait_for_table(page, timeout_s=60)
    elapsed = time.perf_counter() - started
    page.close()
    if own:
        context.close()
    return elapsed


def report(label: str, times: list[float]) -> None:
    verdict = "OK" if max(times) <= TARGET_S else "OVER"
    print(
        f"first render, {label}, {len(times)} runs: median {statistics.median(times):.2f} s, "
        f"max {max(times):.2f} s (target <= {TARGET_S:.0f} s: {verdict}); "
        + ", ".join(f"{t:.2f}" for t in times)
    )


if __name__ == "__main__":
    main()
