"""Work done once per batch (courier/documents/batch_reuse.py) changes no byte of a page.

Each test renders the same invoices with reuse on and off (two real WeasyPrint renderers)
and compares, per invoice, every page's content stream and every font the page uses (the
embedded subset, its /ToUnicode and its widths): what a reader sees and what text
extraction gets. The PDFs differ only in their IDs and dates.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pikepdf
import pytest
from weasyprint import HTML

from courier.documents import batch_reuse
from courier.documents.pdf import TEMPLATES_DIR, BatchResult, PdfRenderer
from courier.domain import Address, Invoice
from courier.sample_data import generate_invoices
from tests.integration.test_pdf_render import BATCH, make_invoice


def page_digests(pdf: bytes) -> list[str]:
    """Per page: a digest of its content stream and of each font it uses."""
    digests = []
    with pikepdf.open(io.BytesIO(pdf)) as document:
        for page in document.pages:
            digest = hashlib.sha256()
            contents = page.obj.Contents
            for stream in contents if isinstance(contents, pikepdf.Array) else [contents]:
                digest.update(stream.read_bytes())
            fonts = page.Resources.get("/Font", pikepdf.Dictionary())
            for name in sorted(fonts.keys()):
                font = fonts[name]
                digest.update(name.encode())
                if "/ToUnicode" in font:
                    digest.update(font.ToUnicode.read_bytes())
                for descendant in font.get("/DescendantFonts", pikepdf.Array()):
                    digest.update(repr(descendant.get("/W")).encode())
                    descriptor = descendant.FontDescriptor
                    if "/FontFile2" in descriptor:
                        digest.update(descriptor.FontFile2.read_bytes())
            digests.append(digest.hexdigest())
    return digests


def render_both(
    monkeypatch: pytest.MonkeyPatch,
    invoices: Sequence[Invoice],
    templates_dir: Path = TEMPLATES_DIR,
) -> tuple[BatchResult, BatchResult, batch_reuse.BatchMemo]:
    """The batch without reuse, with reuse, and what the reusing render remembered."""
    without = PdfRenderer(templates_dir=templates_dir, reuse_layout=False).render_batch(invoices)
    renderer = PdfRenderer(templates_dir=templates_dir)
    assert renderer.reuse_layout, "batch_reuse could not wrap this WeasyPrint (see its log)"
    memos: list[batch_reuse.BatchMemo] = []
    original = batch_reuse.reusing

    @contextlib.contextmanager
    def spying() -> Iterator[batch_reuse.BatchMemo]:
        with original() as memo:
            memos.append(memo)
            yield memo

    monkeypatch.setattr(batch_reuse, "reusing", spying)
    with_reuse = renderer.render_batch(invoices)
    assert len(memos) == 1, "one document, one memo"
    return without, with_reuse, memos[0]


def assert_same_pages(without: BatchResult, with_reuse: BatchResult) -> None:
    assert not without.errors and not with_reuse.errors
    assert sorted(without.pdfs) == sorted(with_reuse.pdfs)
    for number, pdf in without.pdfs.items():
        assert page_digests(with_reuse.pdfs[number]) == page_digests(pdf), number


def test_sample_batch_reuses_more_than_half_of_its_lines_and_prints_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    invoices = generate_invoices(25)
    without, with_reuse, memo = render_both(monkeypatch, invoices)
    assert_same_pages(without, with_reuse)
    for kind in ("lines", "drawings", "used_values", "struts"):
        assert memo.hits[kind] > memo.misses[kind] > 0, (kind, memo.hits, memo.misses)


def test_scripts_multi_page_and_repeated_lines_print_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Thai, Arabic (right to left), Latin, a 60-line invoice over several pages, and
    lines that repeat within an invoice and across invoices."""
    repeated = make_invoice("REP-2025-0006", "บริษัท ซ้ำ จำกัด", lines=8)
    repeated = replace(
        repeated,
        lines=tuple(replace(line, description="สินค้าเดิม same item") for line in repeated.lines),
    )
    arabic_again = replace(BATCH[1], number="SA-2025-0007")
    without, with_reuse, memo = render_both(monkeypatch, [*BATCH, repeated, arabic_again])
    assert_same_pages(without, with_reuse)
    assert memo.hits["drawings"] > 0


def test_lines_with_decorations_ellipsis_spacing_and_justification_print_the_same(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A stylesheet with what the reuse must not replay blindly: underlined and struck
    text (drawn around the glyphs), an ellipsis (text cut to a width), letter and word
    spacing, and justified text (spacing that depends on the line)."""
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, templates)
    with (templates / "invoice.css").open("a", encoding="utf-8") as css:
        css.write(
            """
            .buyer .name { text-decoration: underline; }
            .seller .name { text-decoration: line-through overline; }
            table.lines td.description { white-space: nowrap; overflow: hidden;
                                          text-overflow: ellipsis; }
            .address { letter-spacing: 0.08em; word-spacing: 0.2em; }
            table.totals tr.in-words td { text-align: justify; }
            """
        )
    long_names = [
        make_invoice(
            f"DEC-2025-{i:04d}",
            "บริษัท ขีดเส้นใต้ underlined buyer",
            description="a description long enough to be cut by the ellipsis " * 3,
            address=Address("12 Long Road with words to space", "10200", "TH", city="Bangkok"),
        )
        for i in range(4)
    ]
    without, with_reuse, memo = render_both(monkeypatch, long_names, templates)
    assert_same_pages(without, with_reuse)
    assert memo.hits["lines"] > 0


#: The same style in containing blocks of different widths: the second row's cells share
#: one style (same parent, same rules) but sit in columns of 100px and 300px, and so do
#: the paragraphs in them (width and padding in %, text that wraps in the narrow one).
SAME_STYLE_OTHER_WIDTHS = """
<html><head><style>
  @page { size: 600px 400px; margin: 10px; font-family: "Noto Sans"; font-size: 12px; }
  table { table-layout: fixed; width: 400px; border-spacing: 0; }
  p.half { width: 50%; padding-left: 10%; margin: 0; }
</style></head><body><table>
  <tr><td style="width: 100px">first</td><td>column</td></tr>
  <tr><td><p class="half">the same words in both</p></td>
      <td><p class="half">the same words in both</p></td></tr>
</table></body></html>
"""


def test_same_style_in_blocks_of_other_widths_prints_the_same() -> None:
    """Straight through WeasyPrint: a memo keyed on the style alone would give the second
    paragraph the first one's width and lines."""
    assert batch_reuse.install()
    plain = HTML(string=SAME_STYLE_OTHER_WIDTHS).write_pdf()
    with batch_reuse.reusing() as memo:
        reused = HTML(string=SAME_STYLE_OTHER_WIDTHS).write_pdf()
    assert memo.misses["used_values"] > 0 and memo.hits["struts"] > 0
    assert page_digests(reused) == page_digests(plain)


def test_outside_a_batch_weasyprint_works_as_its_own() -> None:
    """With no memo active (the plain way of bench/render_bench.py), nothing is kept."""
    assert batch_reuse.install()
    assert batch_reuse._ACTIVE.get() is None
    with batch_reuse.reusing() as memo:
        assert batch_reuse._ACTIVE.get() is memo
    assert batch_reuse._ACTIVE.get() is None


@pytest.mark.parametrize("method", ["transform", "draw_x_object", "set_dash"])
def test_a_drawing_that_calls_anything_else_is_not_replayed(method: str) -> None:
    class Stream:
        def show_text(self, text: str) -> None: ...
        def transform(self, *args: float) -> None: ...
        def draw_x_object(self, name: str) -> None: ...
        def set_dash(self, *args: object) -> None: ...

    recorder = batch_reuse._RecordingStream(Stream())
    recorder.show_text("<0001>")
    assert recorder.replayable and recorder.calls == [("show_text", ("<0001>",), {})]
    getattr(recorder, method)
    assert not recorder.replayable
