"""Invoice PDF throughput: the plain WeasyPrint way vs Courier's (batches on every core).

    .venv/bin/python bench/render_bench.py --count 200 [--workers 2] [--batch-size 25]

Renders the same ``--count`` sample invoices (``courier.sample_data.generate_invoices``):

* **plain**: for each invoice, a fresh ``HTML(string=...).write_pdf()`` of the same
  template and stylesheet (the stylesheet inlined in a ``<style>``), in this process;
* **render_many**: ``courier.documents.parallel.render_many(invoices, workers=2)``, one
  call, *including* starting the worker processes (a fork server that imports WeasyPrint,
  each worker's renderer set-up and warm-up) and stopping them;
* **warm pool**: the same invoices again through a ``RenderPool`` whose workers are
  already running (a long-lived service, or any run after the first batch of a night).

and prints milliseconds per invoice (wall clock), the ratios to the plain way, and how
busy the machine was. Other processes on the machine slow every wall-clock figure, and the
two-worker ones most (they need both cores), so it also prints CPU time: the plain way's,
and the warm workers' per invoice divided by the number of workers, i.e. the wall time on
cores of their own. It checks that both ways give every invoice a PDF, with the same
number of pages.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from collections.abc import Sequence

import pikepdf
from weasyprint import HTML

from courier.documents.parallel import DEFAULT_BATCH_SIZE, RenderPool, render_many
from courier.documents.pdf import STYLESHEET_NAME, TEMPLATES_DIR, render_html
from courier.domain import Invoice
from courier.sample_data import generate_invoices


def plain_pdf(invoice: Invoice, css: str) -> bytes:
    """One invoice the plain way: the project's template, a fresh WeasyPrint document."""
    html = render_html([invoice]).replace("</head>", f"<style>{css}</style></head>", 1)
    pdf: bytes = HTML(string=html, base_url=str(TEMPLATES_DIR)).write_pdf()
    return pdf


def page_count(pdf: bytes) -> int:
    with pikepdf.open(io.BytesIO(pdf)) as document:
        return len(document.pages)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def run(count: int, workers: int, batch_size: int, plain_count: int | None) -> int:
    invoices = generate_invoices(count)
    css = (TEMPLATES_DIR / STYLESHEET_NAME).read_text(encoding="utf-8")
    print(f"{count} sample invoices, {workers} workers, batches of {batch_size}; {load()}")

    plain_pdf(invoices[0], css)  # import-time and first-use costs are not the plain way's
    plain_invoices = invoices[: plain_count or count]
    started, cpu = time.perf_counter(), time.process_time()
    plain = {invoice.number: plain_pdf(invoice, css) for invoice in plain_invoices}
    plain_ms = (time.perf_counter() - started) * 1000 / len(plain_invoices)
    plain_cpu_ms = (time.process_time() - cpu) * 1000 / len(plain_invoices)
    print(
        f"plain        {plain_ms:7.1f} ms/invoice  ({len(plain_invoices)} invoices;"
        f" CPU {plain_cpu_ms:.1f} ms/invoice)"
    )

    started = time.perf_counter()
    cold = render_many(invoices, workers=workers, batch_size=batch_size)
    cold_ms = (time.perf_counter() - started) * 1000 / count
    print(
        f"render_many  {cold_ms:7.1f} ms/invoice  x{plain_ms / cold_ms:.1f}"
        "  (one call: starts and stops the workers)"
    )

    warm_runs: list[float] = []
    with RenderPool(workers=workers) as pool:
        pool.start()
        for _ in range(3):
            started = time.perf_counter()
            warm = pool.render(invoices, batch_size=batch_size)
            warm_runs.append((time.perf_counter() - started) * 1000 / count)
        worker_cpu_ms = pool.cpu_seconds * 1000 / (3 * count)
    warm_ms = statistics.median(warm_runs)
    runs = ", ".join(f"{ms:.1f}" for ms in warm_runs)
    print(f"warm pool    {warm_ms:7.1f} ms/invoice  x{plain_ms / warm_ms:.1f}  (median of {runs})")
    own_cores_ms = worker_cpu_ms / workers
    print(
        f"CPU          workers {worker_cpu_ms:.1f} ms/invoice -> {own_cores_ms:.1f} ms/invoice"
        f" on {workers} cores of their own: x{plain_cpu_ms / own_cores_ms:.1f} the plain"
        " way's CPU time"
    )
    print(load())

    failures = check(invoices, plain, cold.pdfs, cold.errors) + check(
        invoices, plain, warm.pdfs, warm.errors
    )
    for failure in failures:
        print("FAIL", failure)
    return 1 if failures else 0


def check(
    invoices: Sequence[Invoice],
    plain: dict[str, bytes],
    pdfs: dict[str, bytes],
    errors: dict[str, str],
) -> list[str]:
    failures = [f"{number}: {error}" for number, error in errors.items()]
    failures += [f"{i.number}: no PDF" for i in invoices if i.number not in pdfs]
    for number, pdf in plain.items():
        if number in pdfs and page_count(pdf) != page_count(pdfs[number]):
            failures.append(
                f"{number}: {page_count(pdfs[number])} pages, plain way {page_count(pdf)}"
            )
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200, help="invoices (default 200)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument(
        "--plain-count", type=int, default=None, help="render only this many the plain way"
    )
    args = parser.parse_args(argv)
    return run(args.count, args.workers, args.batch_size, args.plain_count)


if __name__ == "__main__":
    sys.exit(main())
