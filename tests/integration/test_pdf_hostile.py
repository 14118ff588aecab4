"""Hostile invoice data: printed as text or refused with a reason, never fetched, never leaked.

A corpus of buyer fields an attacker (or a broken ERP export) could send — markup, scripts,
stylesheets and URLs pointing at a local HTTP server and at ``/etc/passwd``, attribute
break-outs, huge and endless text, control characters, bidi overrides, zero-width and
non-characters, lone surrogates, an invoice that takes too long to lay out — rendered in
the same batches as ordinary invoices, the production way (``render_many``, 2 workers).

The local server records every request it gets (and would serve a stylesheet that prints
``HTTP-LEAK``): it must get none. No PDF may show a line of ``/etc/passwd``. Each hostile
invoice either renders (its text printed literally) or gets a clear error; every ordinary
invoice renders.
"""

from __future__ import annotations

import io
import logging
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pikepdf
import pytest

from courier.documents.parallel import render_many
from courier.documents.pdf import BatchResult, PdfRenderer
from courier.domain import Invoice
from courier.sample_data import generate_invoices
from tests.support.pdf import pdf_text

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext")

GOOD = generate_invoices(8)
BASE = next(invoice for invoice in GOOD if invoice.currency == "THB")
PASSWD_LINES = [line for line in Path("/etc/passwd").read_text().splitlines() if line.strip()] or [
    "root:x:0:0:root:/root:/bin/bash"
]
#: Layout time limit per batch in this test (production: 60 s).
BATCH_TIMEOUT = 2.5


class _Recorder(BaseHTTPRequestHandler):
    requests: list[str] = []  # noqa: RUF012 (one list per server, set in the fixture)

    def do_GET(self) -> None:
        self.requests.append(self.path)
        body = b'body::after { content: "HTTP-LEAK" } p { background: red }'
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Server:
    url: str
    requests: list[str]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    requests: list[str] = []
    handler = type("Recorder", (_Recorder,), {"requests": requests})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", requests)
    finally:
        httpd.shutdown()
        httpd.server_close()


@dataclass(frozen=True)
class Case:
    invoice: Invoice
    #: None: must render, and ``printed`` must be in its text; else: part of the error.
    refused: str | None = None
    printed: str = ""


def buyer(number: str, name: str | None = None, **address: str) -> Invoice:
    party = BASE.buyer
    if name is not None:
        party = replace(party, name=name)
    if address:
        party = replace(party, address=replace(party.address, **address))
    return replace(BASE, number=number, buyer=party)


def described(number: str, description: str, product_id: str = "SKU-1") -> Invoice:
    line = replace(BASE.lines[0], description=description, product_id=product_id)
    return replace(BASE, number=number, lines=(line,))


def corpus(url: str) -> list[Case]:
    slow_text = ("คำอธิบายสินค้า product description " * 10)[:180]
    # Each description its own (a number at its end): a batch lays out and draws a text
    # it has seen once only (courier/documents/batch_reuse.py), and this one must be slow.
    slow_lines = tuple(
        replace(BASE.lines[0], line_id=i, description=f"{slow_text} {i:05d}", quantity=Decimal(i))
        for i in range(1, 1_001)
    )
    return [
        Case(buyer("H-SCRIPT", "<script>alert(1)</script><b>Bold</b> Co."), printed="<script>"),
        Case(buyer("H-IMG", "<img src=file:///etc/passwd> Ltd"), printed="<img src=file:"),
        Case(
            buyer("H-LINK", "Link Co", line1=f"<link rel=stylesheet href={url}/x.css>"),
            printed="<link rel=stylesheet",
        ),
        Case(
            buyer("H-STYLE-ATTR", f'<p style="background:url({url}/leak)">styled</p>'),
            printed="background:url(",
        ),
        Case(
            described("H-CSS-URL", "x{background:url(file:///etc/passwd)} y"),
            printed="url(file:///etc/passwd)",
        ),
        Case(
            buyer("H-IMPORT", f'<style>@import url("{url}/import.css");</style> Corp'),
            printed="@import",
        ),
        Case(buyer("H-IMPORT-BARE", f'@import "{url}/bare.css"; Corp'), printed="@import"),
        Case(
            buyer("H-BREAKOUT", f'" style="background:url({url}/attr)" x="'),
            printed='style="background:url(',
        ),
        Case(
            described("H-PRODUCT", "Widget", product_id=f'"><img src="{url}/pid.png">'),
            printed="<img src=",
        ),
        Case(
            buyer("H-SVG", f"<svg><image href='{url}/svg.png'/></svg> & <iframe src={url}/>"),
            printed="<svg>",
        ),
        Case(
            replace(buyer("H-NUMBER-<b>&amp;</b>"), type_code="388"),
            printed="H-NUMBER-<b>&amp;</b>",
        ),
        Case(
            buyer("H-CONTROL", "Bad\x00\x01\x08\x0b\x0c\x1b[31m\x7f\x9b Corp"),
            printed="Bad[31m Corp",
        ),
        Case(buyer("H-RLO", "Evil \u202egnp.exe\u202c Ltd"), printed="Evil gnp.exe Ltd"),
        Case(buyer("H-ISOLATE", "Iso\u2067late\u2069d \u202aLRE\u202c"), printed="Isolated LRE"),
        Case(buyer("H-ZERO-WIDTH", "Zero\u200bWidth\u200c\u200d\ufeff Co"), printed="Zero"),
        Case(buyer("H-NONCHAR", "Non\ufffe\uffffchar Co"), printed="Nonchar Co"),
        Case(buyer("H-SURROGATE", "Broken \udc80 Name"), refused="lone surrogate"),
        Case(
            buyer("H-HUGE-NAME", "A" * (1024 * 1024)),
            refused="buyer.name is 1,048,576 characters long; at most 2,000",
        ),
        Case(
            described("H-ENDLESS", "\n".join(f"line {i}" for i in range(10_000))),
            refused="lines[0].description is 98,889 characters long",
        ),
        Case(
            replace(BASE, number="H-MANY-LINES", lines=BASE.lines * 1_001),
            refused="lines; at most 1,000 are printed",
        ),
        Case(
            replace(BASE, number="H-SLOW", lines=slow_lines),
            refused=f"did not finish within {BATCH_TIMEOUT:g} s (the time limit per batch), twice",
        ),
    ]


def check(result: BatchResult, cases: list[Case], server: Server) -> None:
    assert server.requests == []
    numbers = [case.invoice.number for case in cases] + [invoice.number for invoice in GOOD]
    assert sorted([*result.pdfs, *result.errors]) == sorted(numbers)  # each exactly once
    for invoice in GOOD:
        assert invoice.number in result.pdfs, result.errors.get(invoice.number)
    for case in cases:
        number = case.invoice.number
        if case.refused is None:
            assert number in result.pdfs, (number, result.errors.get(number))
            text = pdf_text(result.pdfs[number])
            assert case.printed in " ".join(text.split()), (number, text[:2000])
        else:
            assert number in result.errors, number
            assert case.refused in result.errors[number], (number, result.errors[number])
    for number, pdf in result.pdfs.items():
        text = pdf_text(pdf)
        assert "HTTP-LEAK" not in text
        assert not [line for line in PASSWD_LINES if line in text], number
        assert "\u202e" not in text and "\x00" not in text
        with pikepdf.open(io.BytesIO(pdf)) as document:
            assert len(document.attachments) == 0
            assert all("/Annots" not in page for page in document.pages)  # no links either


def test_hostile_fields_over_worker_processes(server: Server) -> None:
    cases = corpus(server.url)
    invoices = [case.invoice for case in cases]
    mixed = [item for pair in zip(invoices, GOOD, strict=False) for item in pair]
    mixed += invoices[len(GOOD) :]
    result = render_many(mixed, workers=2, batch_size=5, batch_timeout=BATCH_TIMEOUT)
    check(result, cases, server)


def test_hostile_fields_in_one_process_draw_real_glyphs(server: Server) -> None:
    """The same corpus in-process (but the slow invoice: no time limit here): WeasyPrint
    warns about nothing it fetched or could not draw."""
    cases = [case for case in corpus(server.url) if case.invoice.number != "H-SLOW"]
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(level=logging.WARNING)
    logger = logging.getLogger("weasyprint")
    logger.addHandler(handler)
    try:
        result = PdfRenderer().render_batch([*[case.invoice for case in cases], *GOOD])
    finally:
        logger.removeHandler(handler)
    check(result, cases, server)
    messages = [record.getMessage() for record in records]
    assert [message for message in messages if ".notdef" in message] == []
    assert [message for message in messages if "127.0.0.1" in message or "passwd" in message] == []
