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

The plain way and the warm pool take turns (``--rounds``: the plain way on a share of the
invoices, then the pool on all of them, and again), so that both meet the same moments of
a machine whose speed drifts; each side's figure is the median of its rounds. The shares
have the same mix of invoice sizes (dealt out in order of line count), so that no round's
plain figure is cheaper or dearer for its invoices.

and prints milliseconds per invoice (wall clock), the ratios to the plain way, and how
busy the machine was. For context it also renders a few invoices the plain way with
WeasyPrint's fontTools subsetter (what it falls back to without HarfBuzz-subset, which the
project's setup installs): the ratios are against the faster, HarfBuzz plain way.

Other processes on the machine slow every wall-clock figure, and the two-worker ones
most (they need both cores), so it also prints CPU time: the plain way's, and the warm
workers' per invoice divided by the number of workers, i.e. the wall time on cores of
their own. It checks that both ways give every invoice a PDF, with the same number of
pages.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import statistics
import sys
import time
from collections.abc import Sequence

import pikepdf
import weasyprint.pdf.fonts as weasyprint_fonts
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


def fonttools_plain_ms(invoices: Sequence[Invoice], css: str) -> float:
    """The plain way with WeasyPrint's fallback font subsetter (fontTools)."""
    saved = weasyprint_fonts.harfbuzz_subset
    weasyprint_fonts.harfbuzz_subset = None
    try:
        started = time.perf_counter()
        for invoice in invoices:
            plain_pdf(invoice, css)
        return (time.perf_counter() - started) * 1000 / len(invoices)
    finally:
        weasyprint_fonts.harfbuzz_subset = saved


def run(
    count: int,
    workers: int,
    batch_size: int,
    plain_count: int | None,
    fonttools_count: int,
    rounds: int,
) -> int:
    invoices = generate_invoices(count)
    css = (TEMPLATES_DIR / STYLESHEET_NAME).read_text(encoding="utf-8")
    print(f"{count} sample invoices, {workers} workers, batches of {batch_size}; {load()}")
    plain_pdf(invoices[0], css)  # import-time and first-use costs are not the plain way's

    started = time.perf_counter()
    cold = render_many(invoices, workers=workers, batch_size=batch_size)
    cold_ms = (time.perf_counter() - started) * 1000 / count

    # Rounds: the plain way on a share of the invoices, then the warm pool on all of
    # them, and again. Both sides see the same moments of a machine whose speed drifts.
    plain_invoices = invoices[: plain_count or count]
    by_size = sorted(plain_invoices, key=lambda invoice: len(invoice.lines))
    shares = [by_size[i::rounds] for i in range(rounds)]
    plain: dict[str, bytes] = {}
    plain_runs: list[float] = []
    warm_runs: list[float] = []
    plain_cpu = 0.0
    with RenderPool(workers=workers) as pool:
        pool.start()
        pool.render(invoices[: workers * batch_size], batch_size=batch_size)  # warm-up
        pool.cpu_seconds = 0.0
        for share in shares:
            started, cpu = time.perf_counter(), time.process_time()
            plain.update((invoice.number, plain_pdf(invoice, css)) for invoice in share)
            plain_runs.append((time.perf_counter() - started) * 1000 / len(share))
            plain_cpu += time.process_time() - cpu
            started = time.perf_counter()
            warm = pool.render(invoices, batch_size=batch_size)
            warm_runs.append((time.perf_counter() - started) * 1000 / count)
        worker_cpu_ms = pool.cpu_seconds * 1000 / (rounds * count)
    plain_ms, warm_ms = statistics.median(plain_runs), statistics.median(warm_runs)
    plain_cpu_ms = plain_cpu * 1000 / len(plain_invoices)

    def listed(runs: list[float]) -> str:
        return ", ".join(f"{ms:.1f}" for ms in runs)

    print(
        f"plain        {plain_ms:7.1f} ms/invoice  (median of {listed(plain_runs)};"
        f" {len(plain_invoices)} invoices; CPU {plain_cpu_ms:.1f} ms/invoice)"
    )
    if fonttools_count:
        logging.getLogger("weasyprint").setLevel(logging.ERROR)  # its fallback warning
        slow = fonttools_plain_ms(invoices[:fonttools_count], css)
        logging.getLogger("weasyprint").setLevel(logging.NOTSET)
        print(
            f"  (plain with fontTools subsetting: {slow:.1f} ms/invoice, {fonttools_count}"
            " invoices; not the baseline)"
        )
    print(
        f"render_many  {cold_ms:7.1f} ms/invoice  x{plain_ms / cold_ms:.1f}"
        "  (one call: starts and stops the workers)"
    )
    print(
        f"warm pool    {warm_ms:7.1f} ms/invoice  x{plain_ms / warm_ms:.1f}"
        f"  (median of {listed(warm_runs)}; rounds: "
        + ", ".join(f"x{p / w:.1f}" for p, w in zip(plain_runs, warm_runs, strict=True))
        + ")"
    )
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
    parser.add_argument(
        "--fonttools-count",
        type=int,
        default=10,
        help="invoices rendered the plain way with fontTools subsetting, for context (0: none)",
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="plain / warm pool rounds, interleaved (default 5)"
    )
    args = parser.parse_args(argv)
    return run(
        args.count,
        args.workers,
        args.batch_size,
        args.plain_count,
        args.fonttools_count,
        max(1, args.rounds),
    )


if __name__ == "__main__":
    sys.exit(main())
