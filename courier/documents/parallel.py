"""Invoice PDFs on every core: batches of invoices over a pool of renderer processes.

:class:`~courier.documents.pdf.PdfRenderer` uses one core (WeasyPrint is pure Python, so
threads would not help). This module cuts the invoices into batches and renders them in
worker processes, each holding one warm ``PdfRenderer`` for its whole life::

    result = render_many(invoices, workers=2)   # -> BatchResult, like render_batch

    with RenderPool(workers=2) as pool:          # or keep the workers for several calls
        pool.start()                             # optional: start and warm them up now
        result = pool.render(invoices)

The result has the shape of :meth:`PdfRenderer.render_batch`: every distinct invoice
number is in exactly one of ``pdfs``/``errors`` (an invoice number given twice is refused,
as in a batch). An invoice's PDF has the same pages and text whichever batch rendered it.

Failures stay contained:

* An invoice the template rejects, or one that makes layout fail, is handled inside the
  worker by ``render_batch`` (refused before layout, or isolated by bisection).
* A batch that runs longer than ``batch_timeout`` (:data:`BATCH_TIMEOUT_SECONDS`), or whose
  worker dies (a crash in C code, the memory limit, a kill), loses nothing else: the
  worker is killed and replaced, the other workers carry on, and the batch's invoices are
  retried one by one (once, also a batch of one: the worker may have been killed from
  outside). An invoice that times out or kills its worker again, alone, gets a clear
  error. Batches are small (:data:`DEFAULT_BATCH_SIZE` invoices, at most
  :data:`MAX_LINES_PER_BATCH` invoice lines) and invoices bounded in size before layout,
  so a legitimate batch never comes near the limit (see :data:`BATCH_TIMEOUT_SECONDS`).
* Each worker's address space is capped (``RLIMIT_AS``, :data:`WORKER_MEMORY_LIMIT_BYTES`),
  so one monstrous invoice cannot take the machine's memory: allocations beyond it fail
  (a ``MemoryError`` for that batch, or a crash of the worker, both handled as above), and
  a worker that ran out of memory is replaced after answering.

Workers are started with the ``forkserver`` method (never plain ``fork``: the parent may
run threads, e.g. Prefect's), and the fork server preloads this module, so a new worker
starts in a few milliseconds plus its renderer set-up instead of importing WeasyPrint
again (~1 s).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Final

from courier.documents.pdf import BatchResult, PdfRenderer
from courier.domain import Address, Invoice, InvoiceLine, Party

__all__ = [
    "BATCH_TIMEOUT_SECONDS",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_WORKERS",
    "MAX_LINES_PER_BATCH",
    "WORKER_MEMORY_LIMIT_BYTES",
    "RenderPool",
    "RenderPoolError",
    "render_many",
]

#: Wall-clock limit for one batch in one worker, from the moment it is handed over. A
#: batch of 25 typical invoices takes ~0.7 s, the biggest invoice the size limits let
#: through ~5 s (courier/documents/pdf.py, ``check_invoice_limits``).
BATCH_TIMEOUT_SECONDS: Final = 60.0
#: Invoices per batch. Bigger batches amortise WeasyPrint's per-document cost (measured
#: per invoice: 1 alone ~42 ms, 10 ~29 ms, 25 ~27 ms, 40+ ~27 ms CPU), smaller ones balance
#: the workers better at the end of a run; :func:`render_many` also shrinks batches so
#: that every worker gets one.
DEFAULT_BATCH_SIZE: Final = 25
#: A batch also closes once its invoices have this many lines (keeps batch times even).
MAX_LINES_PER_BATCH: Final = 250
#: Address-space limit per worker (``RLIMIT_AS``). Measured: a warm worker maps 250-330
#: MiB (Python, WeasyPrint, Pango/HarfBuzz, the fonts; RSS ~65 MiB), ~30 MiB more after
#: 200 invoices, ~430 MiB at most for the biggest invoice ``pdf.check_invoice_limits``
#: lets through (1,000 lines, 200,000 characters; RSS ~160 MiB). 1 GiB is 2.5 times that.
WORKER_MEMORY_LIMIT_BYTES: Final = 1024 * 1024 * 1024
#: Default number of workers: one per core.
DEFAULT_WORKERS: Final = os.cpu_count() or 1
#: How long a new worker may take to set up its renderer before the pool gives up.
WORKER_START_TIMEOUT_SECONDS: Final = 120.0
#: Start method: a fork server (preloaded with this module) forks the workers.
START_METHOD: Final = "forkserver"
#: Exit status of a worker that hit its memory limit (it does not answer for the batch).
EXIT_OUT_OF_MEMORY: Final = 75
_MEMORY_MARGIN_BYTES: Final = 16 * 1024 * 1024

_LOG = logging.getLogger(__name__)


class RenderPoolError(RuntimeError):
    """The pool itself cannot work (a worker cannot even start): not about an invoice."""


def render_many(
    invoices: Sequence[Invoice],
    *,
    workers: int = DEFAULT_WORKERS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    batch_timeout: float = BATCH_TIMEOUT_SECONDS,
    memory_limit: int | None = WORKER_MEMORY_LIMIT_BYTES,
) -> BatchResult:
    """Render ``invoices`` in ``workers`` processes (started for this call, then stopped)."""
    if not invoices:
        return BatchResult()
    workers = max(1, min(workers, len(invoices)))
    with RenderPool(workers=workers, memory_limit=memory_limit) as pool:
        return pool.render(invoices, batch_size=batch_size, batch_timeout=batch_timeout)


# ---- batches ------------------------------------------------------------------------------


def plan_batches(
    invoices: Sequence[Invoice],
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int = 1,
    max_lines: int = MAX_LINES_PER_BATCH,
) -> list[list[Invoice]]:
    """Consecutive batches of at most ``batch_size`` invoices and ``max_lines`` lines (an
    invoice with more lines is a batch of its own), and at least one batch per worker
    when there are enough invoices."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    size = max(1, min(batch_size, math.ceil(len(invoices) / max(1, workers))))
    batches: list[list[Invoice]] = []
    current: list[Invoice] = []
    lines = 0
    for invoice in invoices:
        weight = len(invoice.lines)
        if current and (len(current) >= size or lines + weight > max_lines):
            batches.append(current)
            current, lines = [], 0
        current.append(invoice)
        lines += weight
    if current:
        batches.append(current)
    return batches


# ---- worker process -----------------------------------------------------------------------


def _warm_up_invoice() -> Invoice:
    """A small invoice in Thai, Latin and Arabic: rendering it loads every font."""
    address = Address("1 ถนนสีลม", "10500", "TH", city="บางรัก", province="กรุงเทพมหานคร")
    return Invoice(
        number="WARM-UP",
        seller=Party("บริษัท ตัวอย่าง จำกัด", address, tax_id="0105558000001"),
        buyer=Party("شركة المثال Example Co.", address, tax_id="0105551234567"),
        buyer_phone_raw="",
        issued_at=datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=7))),
        due_date=date(2026, 1, 31),
        currency="THB",
        vat_rate=Decimal("7"),
        lines=(InvoiceLine(1, "SKU", "ค่าบริการ service خدمة", Decimal("1"), Decimal("1.00")),),
    )


def _limit_memory(limit: int | None) -> None:
    if limit is None:
        return
    import resource  # POSIX only; imported here so the module imports everywhere

    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _worker_main(conn: multiprocessing.connection.Connection, memory_limit: int | None) -> None:
    """Worker loop: build one renderer, then render batches until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _limit_memory(memory_limit)
    renderer = PdfRenderer()
    renderer.render_batch([_warm_up_invoice()])  # loads every font now, not in batch 1
    # Everything alive now lives as long as the worker: keep it out of the collector's
    # way, and collect less often (layout makes many short-lived objects, few cycles).
    # Measured: ~10% less CPU per invoice than the default settings.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        batch_id, invoices = message
        started = time.process_time()
        try:
            result = renderer.render_batch(invoices)
        except MemoryError:
            os._exit(EXIT_OUT_OF_MEMORY)
        if _ran_out_of_memory(result):
            # Errors caused by the limit say nothing about the invoices (and the heap may be
            # left fragmented): no answer; the parent retries them alone in fresh workers.
            os._exit(EXIT_OUT_OF_MEMORY)
        conn.send((batch_id, result.pdfs, result.errors, time.process_time() - started))


def _ran_out_of_memory(result: BatchResult) -> bool:
    """Whether the batch hit the address-space limit: a ``MemoryError`` reached
    ``render_batch`` (which reports it as an invoice's error), or the process's peak
    mapping came within :data:`_MEMORY_MARGIN_BYTES` of its current limit (allocations in
    C code fail in other ways, e.g. a ``SystemError`` from cffi)."""
    if any(error.startswith("MemoryError") for error in result.errors.values()):
        return True
    if not result.errors:
        return False
    import resource  # POSIX only, as in _limit_memory

    limit, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if limit == resource.RLIM_INFINITY:
        return False
    return _peak_address_space() >= limit - _MEMORY_MARGIN_BYTES


def _peak_address_space() -> int:
    """Peak mapped bytes of this process (Linux ``VmPeak``; 0 where unknown)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmPeak:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _numbers(invoices: Sequence[Invoice]) -> Iterator[str]:
    return (invoice.number for invoice in invoices)


# ---- the pool -----------------------------------------------------------------------------


@dataclass
class _Job:
    batch_id: int
    invoices: list[Invoice]
    retry: bool = False  # a second attempt, one invoice alone
    started: float = 0.0


class _Worker:
    def __init__(self, context: Any, memory_limit: int | None) -> None:
        self.conn, child_conn = context.Pipe(duplex=True)
        self.process = context.Process(
            target=_worker_main,
            args=(child_conn, memory_limit),
            name="courier-pdf-worker",
            daemon=True,
        )
        self.process.start()
        child_conn.close()
        self.ready = False

    def wait_ready(self, timeout: float) -> None:
        if self.ready:
            return
        if self.conn.poll(timeout):
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                message = None
            if isinstance(message, tuple) and message[0] == "ready":
                self.ready = True
                return
        self.kill()
        raise RenderPoolError(
            f"a PDF worker failed to start within {timeout:g} s"
            f" ({_exit_description(self.process)}); see its log output"
        )

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.conn.close()


def _exit_description(process: Any) -> str:
    code = process.exitcode
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class RenderPool:
    """``workers`` renderer processes; reuse it for several :meth:`render` calls.

    Not thread-safe: one thread drives a pool. Use as a context manager, or call
    :meth:`close`.
    """

    def __init__(
        self,
        workers: int = DEFAULT_WORKERS,
        *,
        memory_limit: int | None = WORKER_MEMORY_LIMIT_BYTES,
        start_method: str = START_METHOD,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.memory_limit = memory_limit
        self._context = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            # Effective only if this process has not started its fork server yet.
            self._context.set_forkserver_preload([__name__])
        self._pool: list[_Worker] = []
        self._next_batch_id = 0
        #: CPU time the workers spent on the batches they answered (all calls so far).
        self.cpu_seconds = 0.0

    def __enter__(self) -> RenderPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the running workers (monitoring, tests)."""
        return [w.process.pid for w in self._pool if w.process.is_alive() and w.process.pid]

    def start(self) -> None:
        """Start the missing workers and wait until each has a warm renderer."""
        self._pool = [worker for worker in self._pool if worker.process.is_alive()]
        new = [
            _Worker(self._context, self.memory_limit) for _ in range(self.workers - len(self._pool))
        ]
        self._pool.extend(new)
        for worker in new:
            worker.wait_ready(WORKER_START_TIMEOUT_SECONDS)

    def close(self) -> None:
        """Stop the workers (waits for them; kills one that does not stop)."""
        pool, self._pool = self._pool, []
        for worker in pool:
            worker.stop()

    def render(
        self,
        invoices: Sequence[Invoice],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        batch_timeout: float = BATCH_TIMEOUT_SECONDS,
    ) -> BatchResult:
        """Render ``invoices`` over the workers; see the module doc."""
        result = BatchResult()
        counts = Counter(_numbers(invoices))
        unique: list[Invoice] = []
        for invoice in invoices:
            if counts[invoice.number] > 1:
                result.errors[invoice.number] = (
                    f"invoice number appears {counts[invoice.number]} times in the batch"
                )
            else:
                unique.append(invoice)
        if not unique:
            return result
        self.start()
        pending = deque(
            self._job(batch) for batch in plan_batches(unique, batch_size, self.workers)
        )
        running: dict[_Worker, _Job] = {}
        try:
            while pending or running:
                self._dispatch(pending, running)
                self._collect(pending, running, result, batch_timeout)
        except BaseException:
            self.close()  # e.g. Ctrl-C: workers still busy with this call's batches
            raise
        return result

    def _job(self, invoices: list[Invoice], *, retry: bool = False) -> _Job:
        self._next_batch_id += 1
        return _Job(self._next_batch_id, invoices, retry)

    def _dispatch(self, pending: deque[_Job], running: dict[_Worker, _Job]) -> None:
        for index, worker in enumerate(self._pool):
            if not pending:
                return
            if worker in running:
                continue
            if not worker.process.is_alive():
                worker.kill()
                worker = self._pool[index] = _Worker(self._context, self.memory_limit)
                worker.wait_ready(WORKER_START_TIMEOUT_SECONDS)
            job = pending.popleft()
            try:
                worker.conn.send((job.batch_id, job.invoices))
            except (OSError, ValueError):  # died between the check and the send
                pending.appendleft(job)
                worker.kill()
                continue
            job.started = time.monotonic()
            running[worker] = job

    def _collect(
        self,
        pending: deque[_Job],
        running: dict[_Worker, _Job],
        result: BatchResult,
        batch_timeout: float,
    ) -> None:
        """Wait for a result, a dead worker or a deadline; handle what happened."""
        if not running:
            return
        now = time.monotonic()
        deadline = min(job.started for job in running.values()) + batch_timeout
        waitables: list[Any] = []
        for worker in running:
            waitables += [worker.conn, worker.process.sentinel]
        multiprocessing.connection.wait(waitables, timeout=max(0.0, deadline - now))
        now = time.monotonic()
        for worker, job in list(running.items()):
            hung_up = False
            if worker.conn.poll():
                try:
                    batch_id, pdfs, errors, cpu_seconds = worker.conn.recv()
                except (EOFError, OSError):
                    hung_up = True  # exited or died without answering
                else:
                    if batch_id == job.batch_id:
                        del running[worker]
                        result.pdfs.update(pdfs)
                        result.errors.update(errors)
                        self.cpu_seconds += cpu_seconds
                        continue
            if hung_up or not worker.process.is_alive():
                del running[worker]
                worker.process.join(5)  # reaped: its exit status tells why
                worker.kill()
                if worker.process.exitcode == EXIT_OUT_OF_MEMORY:
                    what = f"ran out of memory (the {_gib(self.memory_limit)} limit per worker)"
                else:
                    what = f"died ({_exit_description(worker.process)})"
                self._failed(job, pending, result, f"the renderer process {what}")
            elif now - job.started >= batch_timeout:
                del running[worker]
                worker.kill()
                what = f"did not finish within {batch_timeout:g} s (the time limit per batch)"
                self._failed(job, pending, result, f"rendering {what}")

    def _failed(self, job: _Job, pending: deque[_Job], result: BatchResult, what: str) -> None:
        """A batch whose worker died or timed out: each invoice is retried alone, once."""
        if job.retry:
            number = job.invoices[0].number
            result.errors[number] = f"{what}, twice: the second time rendering this invoice alone"
            _LOG.warning("invoice %.100s: %s", number, result.errors[number])
            return
        _LOG.warning("batch of %d invoices: %s; retrying each alone", len(job.invoices), what)
        pending.extend(self._job([invoice], retry=True) for invoice in job.invoices)


def _gib(limit: int | None) -> str:
    return "unlimited" if limit is None else f"{limit / 1024**3:.2g} GiB"
