"""Invoices rendered over worker processes: ``render_many`` and ``RenderPool``.

The same invoice gives the same pages and text whichever batch renders it (alone, in a
batch of 3 or of 12, in-process or in a worker). A batch over the time limit, or whose
worker dies, costs only the invoice that caused it: the others are retried one by one.
Workers run under an address-space limit.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from courier.documents.parallel import (
    WORKER_MEMORY_LIMIT_BYTES,
    RenderPool,
    plan_batches,
    render_many,
)
from courier.documents.pdf import PdfRenderer
from courier.domain import Invoice
from courier.sample_data import generate_invoices
from courier.wiring import PooledRenderer
from tests.support.pdf import page_count, pdf_text

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext")

INVOICES = generate_invoices(24)


def slow_invoice(number: str, lines: int = 1_000, chars: int = 190) -> Invoice:
    """Within the size limits, but several seconds of layout (1,000 long lines). Each line
    says something new, so the renderer's per-batch reuse cannot shorten the work."""
    base = INVOICES[0]
    words = ("คำอธิบายสินค้า", "product", "description")
    return replace(
        base,
        number=number,
        lines=tuple(
            replace(
                base.lines[0],
                line_id=i,
                description=" ".join(f"{words[k % 3]}{i}.{k}" for k in range(30))[:chars],
                quantity=Decimal(i),
            )
            for i in range(1, lines + 1)
        ),
    )


@pytest.fixture(scope="module")
def pool() -> Iterator[RenderPool]:
    with RenderPool(workers=2) as pool:
        pool.start()
        yield pool


def test_every_invoice_gets_the_same_document_whatever_its_batch(
    pool: RenderPool, tmp_path: Path
) -> None:
    small = pool.render(INVOICES, batch_size=3)
    large = pool.render(INVOICES, batch_size=12)
    renderer = PdfRenderer()
    assert small.errors == large.errors == {}
    assert set(small.pdfs) == set(large.pdfs) == {invoice.number for invoice in INVOICES}
    for invoice in INVOICES:
        alone = renderer.render_one(invoice)
        texts = {pdf_text(pdf) for pdf in (small.pdfs[invoice.number], alone)}
        texts.add(pdf_text(large.pdfs[invoice.number]))
        assert len(texts) == 1, invoice.number
        pages = {page_count(pdf) for pdf in (alone, small.pdfs[invoice.number])}
        assert pages == {page_count(large.pdfs[invoice.number])}
        assert invoice.number in texts.pop()


def test_render_many_starts_and_stops_its_workers() -> None:
    result = render_many(INVOICES[:5], workers=2, batch_size=2)
    assert result.errors == {}
    assert sorted(result.pdfs) == sorted(invoice.number for invoice in INVOICES[:5])
    assert render_many([]).pdfs == {}


def test_bad_and_duplicate_invoices_are_reported_like_in_a_batch(pool: RenderPool) -> None:
    good, twice, other = INVOICES[:3]
    float_price = replace(
        INVOICES[3],
        lines=(replace(INVOICES[3].lines[0], unit_price=12.5),),  # type: ignore[arg-type]
    )
    result = pool.render([good, twice, float_price, twice, other], batch_size=2)
    assert set(result.pdfs) == {good.number, other.number}
    assert result.errors[twice.number] == "invoice number appears 2 times in the batch"
    assert "float" in result.errors[float_price.number]


def test_batches_are_bounded_and_shared_out() -> None:
    batches = plan_batches(INVOICES, batch_size=10, workers=2)
    assert [invoice for batch in batches for invoice in batch] == INVOICES  # order kept
    assert all(len(batch) <= 10 for batch in batches)
    assert len(plan_batches(INVOICES[:6], batch_size=25, workers=2)) == 2  # both workers busy
    heavy = [slow_invoice(f"H{i}", lines=200) for i in range(3)]
    assert [len(batch) for batch in plan_batches(heavy, batch_size=25)] == [1, 1, 1]
    with pytest.raises(ValueError):
        plan_batches(INVOICES, batch_size=0)


def test_a_batch_over_the_time_limit_costs_only_the_slow_invoice() -> None:
    """The batch holding the slow invoice times out; its other invoices are rendered
    alone, the slow one times out again alone and gets the error."""
    slow = slow_invoice("SLOW-1", lines=240)  # ~2 s alone; shares a batch (< 250 lines)
    invoices = [slow, *INVOICES[:6]]
    batches = plan_batches(invoices, batch_size=10)
    assert len(batches[0]) > 1
    with RenderPool(workers=1, memory_limit=None) as pool:
        pool.start()
        first_pid = pool.worker_pids
        started = time.monotonic()
        result = pool.render(invoices, batch_size=10, batch_timeout=0.5)
        elapsed = time.monotonic() - started
        assert pool.worker_pids != first_pid  # the stuck worker was replaced
    assert set(result.pdfs) == {invoice.number for invoice in invoices} - {"SLOW-1"}
    assert result.errors == {
        "SLOW-1": "rendering did not finish within 0.5 s (the time limit per batch), twice:"
        " the second time rendering this invoice alone"
    }
    assert elapsed < 20  # twice the limit (batch, then alone), restarts, the good ones


def test_a_dead_worker_costs_nothing_but_a_retry(caplog: pytest.LogCaptureFixture) -> None:
    slow = slow_invoice("SLOW-2", lines=200)  # ~1.5 s: long enough to be killed mid-batch
    invoices = [slow, *INVOICES[:4]]
    assert len(plan_batches(invoices, batch_size=10)[0]) > 1
    with RenderPool(workers=1) as pool:
        pool.start()
        (pid,) = pool.worker_pids
        killer = threading.Timer(0.3, os.kill, (pid, signal.SIGKILL))  # as the OOM killer
        killer.start()
        try:
            result = pool.render(invoices, batch_size=10)
        finally:
            killer.cancel()
        assert pool.worker_pids and pool.worker_pids != [pid]
    assert result.errors == {}
    assert set(result.pdfs) == {invoice.number for invoice in invoices}
    assert "died (killed by SIGKILL); retrying each alone" in caplog.text


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="needs Linux /proc")
def test_workers_run_under_the_memory_limit(pool: RenderPool) -> None:
    for pid in pool.worker_pids:
        limits = Path(f"/proc/{pid}/limits").read_text()
        line = next(line for line in limits.splitlines() if line.startswith("Max address space"))
        assert line.split()[3:5] == [str(WORKER_MEMORY_LIMIT_BYTES)] * 2


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_a_worker_out_of_memory_costs_nothing_but_a_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worker squeezed to what it maps now (``prlimit``, as if the batch had eaten the
    rest) cannot render a big invoice: it exits without answering, and the batch's
    invoices are rendered alone by fresh workers (with the normal limit). (With 2 MiB to
    spare it sometimes managed: free space in the heap it already maps.)"""
    big = slow_invoice("BIG-MEM", lines=400)
    invoices = [*INVOICES[:3], big, *INVOICES[3:5]]
    with RenderPool(workers=1) as pool:
        pool.start()
        (pid,) = pool.worker_pids
        status = Path(f"/proc/{pid}/status").read_text()
        mapped = next(int(line.split()[1]) for line in status.splitlines() if "VmSize" in line)
        squeezed = mapped * 1024
        resource.prlimit(pid, resource.RLIMIT_AS, (squeezed, squeezed))
        result = pool.render(invoices, batch_size=10)
        assert pool.worker_pids != [pid]
    assert result.errors == {}
    assert set(result.pdfs) == {invoice.number for invoice in invoices}
    assert "retrying each alone" in caplog.text  # out of memory, or a crash in C code


def test_threads_sharing_the_process_renderer_each_get_their_own_documents() -> None:
    """The dashboard runs flows on several threads over one ``PooledRenderer`` per process:
    each caller gets its own invoices' PDFs, never another's answer or a broken pipe."""
    renderer = PooledRenderer(workers=2, batch_size=3)
    halves = [INVOICES[:12], INVOICES[12:]]
    results: dict[int, Any] = {}

    def render(index: int) -> None:
        try:
            results[index] = [renderer.render_batch(halves[index]) for _ in range(3)]
        except Exception as error:  # shown by the assertion below
            results[index] = error

    threads = [threading.Thread(target=render, args=(i,)) for i in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        renderer.close()
    for index, half in enumerate(halves):
        rounds = results[index]
        assert isinstance(rounds, list), rounds
        for result in rounds:
            assert result.errors == {}
            assert set(result.pdfs) == {invoice.number for invoice in half}
            for invoice in half:
                assert invoice.number in pdf_text(result.pdfs[invoice.number])
