"""Invoice PDFs with WeasyPrint: one layout per batch, split into one PDF per invoice.

Why batches: every WeasyPrint document pays a fixed cost (loading fonts, parsing
stylesheets, writing and subsetting the fonts), so :class:`PdfRenderer` lays out a whole
batch as *one* HTML document (each invoice a ``<section>`` starting on a new page), writes
it once, and cuts the result into one PDF per invoice with pikepdf, using the page on which
each section's bookmark first appears. A multi-page invoice stays whole, and an invoice
gets the same pages and text whether it is rendered alone or in a batch (its page numbers
restart at 1, see ``invoice.css``). For both cores of a machine, see
:mod:`courier.documents.parallel`.

API::

    renderer = PdfRenderer()                 # build once, reuse (not thread-safe)
    result = renderer.render_batch(invoices)  # -> BatchResult
    result.pdfs["INV-001"]                    # PDF bytes
    result.errors["INV-002"]                  # why that invoice has no PDF
    renderer.render_one(invoice)              # -> bytes, or raises RenderError
    renderer.render_html(invoices)            # the (X)HTML WeasyPrint lays out (pure)

Every distinct invoice number of the batch ends up in exactly one of ``pdfs``/``errors``.
One bad invoice never sinks the others: template errors (a float amount, an unknown
document type code, text that is not valid Unicode, a field over :data:`MAX_TEXT_CHARS`,
more than :data:`MAX_LINES` lines or :data:`MAX_INVOICE_TEXT_CHARS` characters...) are
caught per invoice before layout, and if layout or PDF writing still fails for the batch,
the batch is split in halves and retried until the failing invoices are isolated and
rendered alone (the good ones are still rendered in groups, so this costs a few extra
layouts, not one per invoice). Two invoices with the
same number are both refused: which PDF would be the right one?

Safety: templates are autoescaped, and WeasyPrint fetches resources only through
:class:`AssetURLFetcher`, which allows ``data:`` URLs and files inside
``courier/documents/assets/`` and refuses everything else (other files, http(s), ftp...),
so WeasyPrint skips the resource. Text from invoice data loses C0/C1 control characters,
the non-characters U+FFFE/U+FFFF and the bidi embedding/override/isolate controls
(U+202A-U+202E, U+2066-U+2069) before it is printed: they are invisible, not valid in XML,
or (RLO...) would let a buyer's name reorder what is printed. Money is ``Decimal`` end to
end; no float is formatted. THB invoices print the grand total in Thai words too
(:func:`courier.documents.thai_text.baht_text`).

Speed (see ``bench/render_bench.py``; WeasyPrint's cost is Python work per box, per line
of text and per border): besides batching, WeasyPrint gets a small user-agent stylesheet
(``templates/ua.css``, only the elements the template uses; the stock one makes every
element compute six unused pseudo-element styles), the template is XHTML parsed with the
C XML parser instead of the pure-Python HTML5 parser, sections carry no ``id`` (an ``id``
makes WeasyPrint compute every style of the section separately instead of sharing them
between invoices), and ``invoice.css`` draws the same page with fewer boxes and borders
(fixed table layouts, rows merged where their values cannot wrap, rules between table
rows as one row background instead of a border per cell), for the same look (and a test
checks that ua.css changes no pixel against WeasyPrint's own user-agent sheet). And what
the invoices of a batch repeat (the labels, often the seller, products and prices: most
lines of text) is laid out and drawn once per document, not once per invoice
(:mod:`courier.documents.batch_reuse`, exact: a test compares every page with and without).

Extractable text: HarfBuzz draws SARA AM (``ำ``) as NIKHAHIT + SARA AA glyphs and Thai
marks with vertical offsets, and a PDF maps each glyph to one text, so without help
``pdftotext`` reads ``จำกัด`` as ``จากัด`` (or drops and misplaces marks). While this module
writes a PDF, every line of text that contains Thai is wrapped in a marked-content span
whose ``/ActualText`` is the line's logical text (PDF 32000-1 14.9.4), which text
extraction, search and copy/paste use instead of the glyphs: see :func:`_actual_text_hook`.
And as WeasyPrint maps a glyph to the text of its first use in the document (a batch), a
glyph used for two texts would extract differently depending on the batch; the one such
case outside Thai, mirrored brackets in right-to-left text, is made a function of the
glyph (:class:`_GlyphTexts`), so an invoice extracts the same whichever batch rendered it.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import inspect
import io
import itertools
import logging
import mimetypes
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname
from xml.etree import ElementTree

import cssselect2
import pikepdf
import pydyf
from fontTools.ttLib import TTFont
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from weasyprint import CSS, HTML
from weasyprint.draw import text as weasyprint_text
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse, path2url

from courier.documents import batch_reuse
from courier.documents.thai_text import baht_text
from courier.domain import Address, Invoice

DOCUMENTS_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = DOCUMENTS_DIR / "templates"
ASSETS_DIR = DOCUMENTS_DIR / "assets"
TEMPLATE_NAME = "invoice.html.j2"
STYLESHEET_NAME = "invoice.css"
#: WeasyPrint's user-agent stylesheet for invoice documents (replaces its HTML5 one).
UA_STYLESHEET_NAME = "ua.css"

#: Longest text field printed, in characters. Longer fields are refused, not truncated: a
#: tax invoice with a cut buyer name or item description would be wrong, and a clear error
#: gets the data fixed. (Also bounds the layout work one invoice can cause.)
MAX_TEXT_CHARS: Final = 2_000
#: Most lines on one invoice (1,000 short lines are about 40 pages).
MAX_LINES: Final = 1_000
#: Most text on one invoice, all fields together. Bounds the work one invoice can cause:
#: an invoice at the limit (1,000 lines of 200 characters) lays out in ~5 s and ~430 MiB
#: (see courier/documents/parallel.py for the time and memory limits around that).
MAX_INVOICE_TEXT_CHARS: Final = 200_000

#: Title printed for each ETDA document type code (Thai / English). Other codes are refused
#: rather than printed as something they are not (e.g. a credit note titled "Tax Invoice").
DOCUMENT_TITLES: dict[str, str] = {
    "388": "ใบกำกับภาษี / Tax Invoice",
    "T02": "ใบแจ้งหนี้/ใบกำกับภาษี / Invoice/Tax Invoice",
    "T03": "ใบเสร็จรับเงิน/ใบกำกับภาษี / Receipt/Tax Invoice",
    "T04": "ใบส่งของ/ใบกำกับภาษี / Delivery Order/Tax Invoice",
}

#: Bookmark label of section ``i`` (``bookmark-label: attr(data-section)``, invoice.css).
SECTION_LABEL_PREFIX: Final = "courier-invoice-section-"

_CENT = Decimal("0.01")
_LOG = logging.getLogger(__name__)


class RenderError(Exception):
    """One invoice could not be rendered."""

    def __init__(self, invoice_number: str, reason: str) -> None:
        self.invoice_number = invoice_number
        self.reason = reason
        super().__init__(f"invoice {invoice_number[:200]!r}: {reason}")


class URLRefusedError(ValueError):
    """A resource URL outside what invoices may load (WeasyPrint logs it and skips it)."""


@dataclass(frozen=True)
class BatchResult:
    """Outcome of :meth:`PdfRenderer.render_batch`.

    ``pdfs`` maps invoice number -> PDF bytes; ``errors`` maps invoice number -> reason.
    Each distinct invoice number of the batch is in exactly one of the two.
    """

    pdfs: dict[str, bytes] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


# ---- resource fetching ------------------------------------------------------------------


class AssetURLFetcher(URLFetcher):
    """WeasyPrint URL fetcher that allows only ``data:`` URLs and files under ``assets_dir``.

    Anything else raises :class:`URLRefusedError`; WeasyPrint catches it, logs it and
    renders without the resource. Symlinks and ``..`` are resolved before the check.
    """

    def __init__(self, assets_dir: Path = ASSETS_DIR) -> None:
        # The parent only ever handles data: URLs (see fetch); no redirects, short timeout.
        super().__init__(timeout=5, allowed_protocols=("data",), allow_redirects=False)
        self.assets_dir = assets_dir.resolve()

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> Any:
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme == "file":
            path = self._asset_path(url)
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return URLFetcherResponse(
                url, path.read_bytes(), headers={"Content-Type": content_type}
            )
        raise URLRefusedError(f"refused to fetch {url[:200]!r}: only data: URLs and assets")

    def _asset_path(self, url: str) -> Path:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise URLRefusedError(f"refused to fetch {url[:200]!r}: remote file URL")
        try:
            path = Path(url2pathname(unquote(parts.path))).resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise URLRefusedError(f"refused to fetch {url[:200]!r}: {exc}") from None
        if not path.is_relative_to(self.assets_dir) or not path.is_file():
            raise URLRefusedError(f"refused to fetch {url[:200]!r}: not an invoice asset")
        return path


# ---- invoice data: limits and printable text ----------------------------------------------


def _text_fields(value: object, path: str) -> Iterator[tuple[str, str]]:
    """(path, text) of every string in ``value``: dataclass fields, tuple/list items."""
    if isinstance(value, str):
        yield path, value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            yield from _text_fields(getattr(value, item.name), f"{path}.{item.name}")
    elif isinstance(value, tuple | list):
        for index, item in enumerate(value):
            yield from _text_fields(item, f"{path}[{index}]")


def check_invoice_limits(invoice: Invoice) -> None:
    """Raise ``ValueError`` naming the field if ``invoice`` is too big to print.

    At most :data:`MAX_LINES` lines, :data:`MAX_TEXT_CHARS` characters per text field
    (every string field, nested ones included: ``buyer.name``, ``lines[3].description``)
    and :data:`MAX_INVOICE_TEXT_CHARS` characters in all.
    """
    if len(invoice.lines) > MAX_LINES:
        raise ValueError(
            f"the invoice has {len(invoice.lines):,} lines; at most {MAX_LINES:,} are printed"
        )
    total = 0
    for path, text in _text_fields(invoice, "invoice"):
        if len(text) > MAX_TEXT_CHARS:
            raise ValueError(
                f"{path.removeprefix('invoice.')} is {len(text):,} characters long;"
                f" at most {MAX_TEXT_CHARS:,} are printed"
            )
        total += len(text)
    if total > MAX_INVOICE_TEXT_CHARS:
        raise ValueError(
            f"the invoice has {total:,} characters of text;"
            f" at most {MAX_INVOICE_TEXT_CHARS:,} are printed"
        )


#: Characters removed from printed text: C0/C1 controls but tab, LF and CR (invisible, and
#: not valid in XML), the non-characters U+FFFE/U+FFFF (not valid in XML), and the bidi
#: embedding/override/isolate controls, which would let invoice data reorder the printed
#: text (the template sets the direction of every free-text element itself).
_UNPRINTABLE: Final = dict.fromkeys(
    [
        *range(0x00, 0x09),
        0x0B,
        0x0C,
        *range(0x0E, 0x20),
        *range(0x7F, 0xA0),
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
        0xFFFE,
        0xFFFF,
    ]
)


def printable_text(value: str) -> str:
    """``value`` without the characters the invoice never prints (see ``_UNPRINTABLE``)."""
    return value.translate(_UNPRINTABLE)


def _finalize(value: object) -> object:
    """Jinja2 ``finalize``: applied to every ``{{ ... }}`` before it is escaped."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return printable_text(value)
    return value


# ---- template filters (Decimal in, text out; floats are refused) -------------------------


def _decimal(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    raise TypeError(f"expected a Decimal amount, got {type(value).__name__} {value!r}")


def format_money(value: object) -> str:
    """``Decimal("1234567.891")`` -> ``"1,234,567.89"`` (cents rounded half away from zero)."""
    amount = _decimal(value)
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {amount!r}")
    return f"{amount.quantize(_CENT, rounding=ROUND_HALF_UP):,.2f}"


def format_price(value: object) -> str:
    """A unit price: at least 2 decimals, more only if the price has them (``0.125``)."""
    amount = _decimal(value)
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {amount!r}")
    exponent = amount.normalize().as_tuple().exponent
    decimals = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"{amount:,.{decimals}f}"


def format_quantity(value: object) -> str:
    """A quantity or rate, no trailing zeros: ``2.500`` -> ``"2.5"``, ``1E+3`` -> ``"1,000"``."""
    amount = _decimal(value)
    if not amount.is_finite():
        raise ValueError(f"not a finite number: {amount!r}")
    if amount == amount.to_integral_value():
        return f"{amount.quantize(Decimal(1)):,f}"
    return f"{amount.normalize():,f}"


def format_baht_words(value: object) -> str:
    """The amount in Thai words (:func:`~courier.documents.thai_text.baht_text`)."""
    return baht_text(_decimal(value))


def format_date(value: object) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"expected a date, got {type(value).__name__} {value!r}")


def text_direction(value: object) -> str:
    """``"rtl"`` or ``"ltr"`` from the first strong character, as ``dir="auto"`` would.

    WeasyPrint ignores ``dir="auto"`` and ``unicode-bidi``, so the template writes the
    direction explicitly: an Arabic name then renders (and aligns) right to left.
    """
    for char in str(value):
        bidi = unicodedata.bidirectional(char)
        if bidi in ("R", "AL"):
            return "rtl"
        if bidi == "L":
            return "ltr"
    return "ltr"


def one_line(value: object) -> str:
    """``value`` with every run of whitespace (line breaks included) as one space."""
    return " ".join(str(value).split())


def address_lines(address: Address) -> list[str]:
    """Printable lines of an address, skipping empty parts; each is one line (a line break
    inside a field is a space, as HTML would print it: the template joins the lines with
    line breaks that it prints)."""
    place = " ".join(part for part in (address.city, address.province) if part.strip())
    last = " ".join(part for part in (place, address.postcode, address.country) if part.strip())
    return [one_line(line) for line in (address.line1, address.line2, last) if line.strip()]


def document_title(type_code: str) -> str:
    try:
        return DOCUMENT_TITLES[type_code]
    except KeyError:
        raise ValueError(f"unsupported document type code {type_code[:50]!r}") from None


#: Formatting whitespace of the template source: a line break (and the indentation around
#: it) after a tag, an output or a statement and before another. Dropped when
#: the template is loaded, so WeasyPrint does not parse thousands of whitespace-only text
#: nodes per batch. Text from invoice data is inserted later and never touched.
_LAYOUT_WHITESPACE = re.compile(r"(>|%\}|\}\})[ \t]*\n\s*(?=<|\{%|\{\{)")


class _CompactLoader(FileSystemLoader):
    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        return _LAYOUT_WHITESPACE.sub(r"\1", source), filename, uptodate


def make_environment(templates_dir: Path = TEMPLATES_DIR) -> Environment:
    """The Jinja2 environment of the invoice template (autoescaped, strict undefined)."""
    env = Environment(
        loader=_CompactLoader(templates_dir),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_finalize,
    )
    filters: dict[str, Callable[..., Any]] = {
        "money": format_money,
        "price": format_price,
        "quantity": format_quantity,
        "percent": format_quantity,
        "baht_words": format_baht_words,
        "isodate": format_date,
        "text_dir": text_direction,
        "address_lines": address_lines,
        "one_line": one_line,
        "document_title": document_title,
    }
    env.filters.update(filters)
    return env


# ---- HTML -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Section:
    """One invoice's rendered body, wrapped in its ``<section>`` by the document template."""

    invoice: Invoice
    title: str
    body: Markup

    @property
    def number(self) -> str:
        return self.invoice.number


class _Template:
    """The invoice template: one body per invoice, bodies joined into a document."""

    def __init__(self, env: Environment) -> None:
        self._template = env.get_template(TEMPLATE_NAME)
        module: Any = self._template.make_module({"sections": [], "title": ""})
        # A macro called from Python returns Markup (autoescaped output) in this environment.
        self._invoice_body: Callable[[Invoice, str], Markup] = module.invoice_body

    def section(self, invoice: Invoice) -> _Section:
        """Render one invoice; raises :class:`RenderError` naming the invoice."""
        try:
            check_invoice_limits(invoice)
            title = document_title(invoice.type_code)
            body = self._invoice_body(invoice, title)
        except Exception as exc:
            raise RenderError(invoice.number, _describe(exc)) from exc
        try:
            # Lone surrogates (json.loads('"\\ud800"') makes them) crash WeasyPrint's
            # layout; refuse them here, where it costs nothing and names the invoice.
            body.encode("utf-8")
            invoice.number.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start]
            raise RenderError(
                invoice.number,
                f"invoice data contains U+{ord(bad):04X}, a lone surrogate (not valid text)",
            ) from None
        return _Section(invoice, title, body)

    def document(self, sections: Sequence[_Section]) -> str:
        """The XHTML document: section ``i`` gets ``data-section="<prefix>i"``."""
        if len(sections) == 1:
            title = f"{sections[0].title} {sections[0].number}"
        else:
            title = f"{len(sections)} invoices"
        return self._template.render(
            sections=sections, title=title, section_label_prefix=SECTION_LABEL_PREFIX
        )


@functools.cache
def _default_template() -> _Template:
    return _Template(make_environment())


def render_html(invoices: Sequence[Invoice]) -> str:
    """The (X)HTML document for ``invoices`` (no I/O beyond loading the template).

    Raises :class:`RenderError` for the first invoice whose data the template rejects.
    The stylesheet is not linked: :class:`PdfRenderer` passes it to WeasyPrint pre-parsed.
    """
    return _html(_default_template(), invoices)


def _html(template: _Template, invoices: Sequence[Invoice]) -> str:
    return template.document([template.section(invoice) for invoice in invoices])


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _InvoiceHTML(HTML):
    """A WeasyPrint ``HTML`` with the invoice user-agent stylesheet.

    :meth:`parse` builds it from the template's XHTML with the C XML parser (~50x faster
    than WeasyPrint's pure-Python HTML5 parser); it falls back to the HTML5 parser for a
    document that is not well-formed XML, or if WeasyPrint's ``HTML`` ever holds other
    state than the five attributes :meth:`HTML.__init__` sets in WeasyPrint 70.
    """

    _user_agent_stylesheets: list[Any]

    def _ua_stylesheets(self, forms: bool = False) -> list[Any]:
        return self._user_agent_stylesheets

    @classmethod
    def parse(
        cls, document: str, base_url: str, url_fetcher: URLFetcher, ua_stylesheets: list[Any]
    ) -> _InvoiceHTML:
        html: _InvoiceHTML | None = None
        if _xml_parse_supported():
            try:
                # Our template's output: invoice data is escaped text, the only DTD is
                # `<!DOCTYPE html>`, so no entity declaration can reach the parser.
                root = ElementTree.fromstring(document)  # noqa: S314
            except ElementTree.ParseError as exc:
                _LOG.warning("invoice document is not well-formed XML (%s); parsing as HTML", exc)
            else:
                html = cls.__new__(cls)
                html.base_url = base_url
                html.url_fetcher = url_fetcher
                html.media_type = "print"
                html.wrapper_element = cssselect2.ElementWrapper.from_html_root(
                    root, content_language=None
                )
                html.etree_element = html.wrapper_element.etree_element
        if html is None:
            html = cls(string=document, base_url=base_url, url_fetcher=url_fetcher)
        html._user_agent_stylesheets = ua_stylesheets
        return html


_HTML_STATE: Final = frozenset(
    {"base_url", "url_fetcher", "media_type", "wrapper_element", "etree_element"}
)


@functools.cache
def _xml_parse_supported() -> bool:
    """Whether WeasyPrint's ``HTML`` holds exactly the state :meth:`_InvoiceHTML.parse` sets."""
    state = set(vars(HTML(string="<p>x</p>", base_url="file:///")))
    if state != _HTML_STATE:
        _LOG.warning("WeasyPrint's HTML holds %s; using its HTML5 parser", sorted(state))
    return state == _HTML_STATE


# ---- extractable Thai text (ActualText) ---------------------------------------------------

#: True while :class:`PdfRenderer` writes a PDF: only then does the hook add ActualText.
_ACTUAL_TEXT: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "courier_pdf_actual_text", default=False
)
_THAI = re.compile("[\u0e01-\u0e5b]")
_RIGHT_TO_LEFT = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")


def _actual_text_hook(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap WeasyPrint's ``draw_first_line(stream, textbox, ...)``, which draws one line
    of text (a ``TextBox``), in ``/Span <</ActualText (the line's text)>> BDC ... EMC``
    when the line contains Thai. Not when it also contains right-to-left text: poppler
    treats an ActualText as glyphs in visual order and reverses the right-to-left runs of
    the logical text it is given (measured), which would make Arabic worse.

    Why at drawing time: it is the only place where the logical text of a run of glyphs
    is known. The PDF alone cannot tell which SARA AA glyph came from ``ำ``, and WeasyPrint
    maps each glyph id to the text of its *first* use in the document, so later uses of
    the same glyph in another cluster extract wrongly (``น้ำ`` can even make a tone mark
    extract as nothing everywhere). ``textbox.text`` is the text of exactly the line drawn
    (WeasyPrint splits text boxes at line breaks), after ``text-transform``.
    """

    @functools.wraps(original)
    def draw_first_line(stream: Any, textbox: Any, *args: Any, **kwargs: Any) -> Any:
        text = getattr(textbox, "text", "")
        if not (_ACTUAL_TEXT.get() and _THAI.search(text)) or _RIGHT_TO_LEFT.search(text):
            return original(stream, textbox, *args, **kwargs)
        stream.begin_marked_content("Span", pydyf.Dictionary({"ActualText": pydyf.String(text)}))
        try:
            return original(stream, textbox, *args, **kwargs)
        finally:
            stream.end_marked_content()

    draw_first_line.courier_actual_text = True  # type: ignore[attr-defined]
    return draw_first_line


@functools.cache
def install_actual_text_hook() -> bool:
    """Install :func:`_actual_text_hook` into WeasyPrint (once per process).

    Returns False, and logs why, if WeasyPrint's text drawing is not what the hook expects
    (then Thai text still prints correctly, it only extracts as described above).
    """
    original = getattr(weasyprint_text, "draw_first_line", None)
    if original is None or not callable(original):
        _LOG.warning("WeasyPrint has no draw_first_line: Thai text will not have ActualText")
        return False
    if getattr(original, "courier_actual_text", False):
        return True
    parameters = list(inspect.signature(original).parameters)
    if parameters[:2] != ["stream", "textbox"]:
        _LOG.warning("unexpected draw_first_line%s: no ActualText for Thai", parameters)
        return False
    weasyprint_text.draw_first_line = _actual_text_hook(original)
    return True


# ---- glyph-to-text maps that do not depend on the batch -----------------------------------

#: Characters HarfBuzz draws with their mirror image's glyph in right-to-left text.
_MIRRORED_PAIRS: Final = {
    **dict(zip("()[]{}<>«»‹›⁅⁆⁽⁾₍₎", ")(][}{><»«›‹⁆⁅⁾⁽₎₍", strict=True)),
    "\u2264": "\u2265",  # ≤ ≥
    "\u2265": "\u2264",
}


@functools.cache
def _nominal_glyphs(font_hash: str, file_content: bytes, index: int) -> dict[str, int]:
    """Glyph id of each character of :data:`_MIRRORED_PAIRS` in one font (its cmap)."""
    try:
        font = TTFont(io.BytesIO(file_content), fontNumber=index, lazy=True)
        cmap = font.getBestCmap() or {}
        return {
            char: font.getGlyphID(cmap[ord(char)]) for char in _MIRRORED_PAIRS if ord(char) in cmap
        }
    except Exception as exc:  # a font fontTools cannot read: keep WeasyPrint's mapping
        _LOG.warning("cannot read the cmap of font %s: %s", font_hash, exc)
        return {}


class _GlyphTexts(dict[int, str]):
    """A font's glyph id -> text map (WeasyPrint's ``Font.to_unicode``, which becomes the
    PDF's ``/ToUnicode``) in which a mirrored glyph means the character it depicts.

    WeasyPrint maps each glyph to the text of its first use in the document, and in
    right-to-left text HarfBuzz draws ``(`` with the glyph of ``)``: whether that glyph
    extracts as ``(`` or ``)`` then depended on which invoice of the batch used it first.
    Here a glyph that is the font's own glyph for the mirror of its text gets that mirror:
    a function of the glyph only, so an invoice extracts the same in any batch.
    """

    def __init__(self, font: Any) -> None:
        super().__init__(font.to_unicode)
        self._font = font
        self._nominal: dict[str, int] | None = None

    def __setitem__(self, glyph: int, text: str) -> None:
        mirror = _MIRRORED_PAIRS.get(text)
        if mirror is not None:
            if self._nominal is None:
                font = self._font
                self._nominal = _nominal_glyphs(font.hash, font.file_content, font.index)
            if self._nominal.get(text) != glyph and self._nominal.get(mirror) == glyph:
                text = mirror
        super().__setitem__(glyph, text)


class _Fonts(dict[Any, Any]):
    """``Document.fonts`` for :class:`PdfRenderer`: each font it gets gets :class:`_GlyphTexts`."""

    def __setitem__(self, key: Any, font: Any) -> None:
        if isinstance(getattr(font, "to_unicode", None), dict):
            font.to_unicode = _GlyphTexts(font)
        super().__setitem__(key, font)


# ---- PDF --------------------------------------------------------------------------------


class PdfRenderer:
    """Renders invoices to PDF. Build once and reuse: it holds the Jinja2 environment, the
    parsed stylesheets and one WeasyPrint ``FontConfiguration``. Not thread-safe: use one
    renderer per thread or process. ``reuse_layout=False`` lays out and draws every
    invoice's text anew (same PDFs, slower: for comparisons, see batch_reuse.py).
    """

    def __init__(
        self,
        assets_dir: Path = ASSETS_DIR,
        templates_dir: Path = TEMPLATES_DIR,
        *,
        reuse_layout: bool = True,
    ):
        self.url_fetcher = AssetURLFetcher(assets_dir)
        self._base_url = path2url(str(assets_dir.resolve())) + "/"
        self._template = _Template(make_environment(templates_dir))
        self._font_config = FontConfiguration()
        self._css = self._stylesheet(templates_dir / STYLESHEET_NAME)
        self._ua_css = [self._stylesheet(templates_dir / UA_STYLESHEET_NAME)]
        install_actual_text_hook()
        #: Work out what invoices of a batch share once per batch (batch_reuse.py).
        self.reuse_layout = reuse_layout and batch_reuse.install()

    def _stylesheet(self, path: Path) -> Any:
        return CSS(
            string=path.read_text(encoding="utf-8"),
            base_url=self._base_url,
            url_fetcher=self.url_fetcher,
            font_config=self._font_config,
        )

    def render_html(self, invoices: Sequence[Invoice]) -> str:
        """See :func:`render_html`."""
        return _html(self._template, invoices)

    def render_one(self, invoice: Invoice) -> bytes:
        """One invoice's PDF; raises :class:`RenderError`."""
        result = self.render_batch([invoice])
        if invoice.number in result.errors:
            raise RenderError(invoice.number, result.errors[invoice.number])
        return result.pdfs[invoice.number]

    def render_batch(self, invoices: Sequence[Invoice]) -> BatchResult:
        """PDF per invoice number, laid out and written as one document (see module doc)."""
        result = BatchResult()
        counts = Counter(invoice.number for invoice in invoices)
        sections: list[_Section] = []
        for invoice in invoices:
            if counts[invoice.number] > 1:
                result.errors[invoice.number] = (
                    f"invoice number appears {counts[invoice.number]} times in the batch"
                )
                continue
            try:
                sections.append(self._template.section(invoice))
            except RenderError as exc:
                result.errors[invoice.number] = exc.reason
        self._render_sections(sections, result)
        return result

    def _render_sections(self, sections: Sequence[_Section], result: BatchResult) -> None:
        """Render as one document; if that fails, bisect until the culprits are alone."""
        if not sections:
            return
        try:
            pdfs = self._render_document(sections)
        except Exception as exc:
            if len(sections) == 1:
                _LOG.warning("invoice %.100s failed to render: %s", sections[0].number, exc)
                result.errors[sections[0].number] = _describe(exc)
                return
            _LOG.warning("batch of %d invoices failed (%s); splitting it", len(sections), exc)
            middle = len(sections) // 2
            self._render_sections(sections[:middle], result)
            self._render_sections(sections[middle:], result)
            return
        result.pdfs.update(pdfs)

    def _render_document(self, sections: Sequence[_Section]) -> dict[str, bytes]:
        html = _InvoiceHTML.parse(
            self._template.document(sections), self._base_url, self.url_fetcher, self._ua_css
        )
        with batch_reuse.reusing() if self.reuse_layout else contextlib.nullcontext():
            document = html.render(font_config=self._font_config, stylesheets=[self._css])
            starts = _section_start_pages(document.pages, len(sections))
            document.fonts = _Fonts(document.fonts)
            token = _ACTUAL_TEXT.set(True)
            try:
                combined = document.write_pdf()
            finally:
                _ACTUAL_TEXT.reset(token)
        with pikepdf.open(io.BytesIO(combined)) as source:
            ends = [*starts[1:], len(source.pages)]
            return {
                section.number: _extract_pages(source, start, end, section)
                for section, start, end in zip(sections, starts, ends, strict=True)
            }


def _section_start_pages(pages: Sequence[Any], count: int) -> list[int]:
    """Index of the page on which each section's bookmark is (checked to increase)."""
    starts: dict[int, int] = {}
    for page_index, page in enumerate(pages):
        for _level, label, _position, _state in page.bookmarks:
            index = label.removeprefix(SECTION_LABEL_PREFIX)
            if index != label and index.isdigit():
                starts.setdefault(int(index), page_index)
    ordered = [starts.get(index, -1) for index in range(count)]
    if ordered[0] != 0 or any(b <= a for a, b in itertools.pairwise(ordered)):
        raise RuntimeError(f"cannot locate invoice sections in the layout: {ordered}")
    return ordered


def _extract_pages(source: pikepdf.Pdf, start: int, end: int, section: _Section) -> bytes:
    pages = source.pages[start:end]
    trimmed = _trim_resources(source, pages)
    target = pikepdf.new()
    target.pages.extend(pages)
    if not trimmed:
        target.remove_unreferenced_resources()
    target.docinfo["/Title"] = printable_text(f"{section.title} {section.number}")
    target.docinfo["/Creator"] = "Courier"
    if "/Producer" in source.docinfo:
        target.docinfo["/Producer"] = source.docinfo["/Producer"]
    buffer = io.BytesIO()
    target.save(
        buffer,
        compress_streams=True,
        object_stream_mode=pikepdf.ObjectStreamMode.generate,
        stream_decode_level=pikepdf.StreamDecodeLevel.none,  # WeasyPrint's streams as they are
    )
    return buffer.getvalue()


#: A name in a content stream: ``/`` and the regular characters after it (PDF 32000 7.3.5).
_CONTENT_NAME: Final = re.compile(rb"/([^\s/\[\]()<>{}%]+)")

#: Resource categories whose entries content streams select by name.
_NAMED_RESOURCES: Final = ("/Font", "/XObject", "/ExtGState", "/Pattern", "/Shading")


def _trim_resources(source: pikepdf.Pdf, pages: Sequence[pikepdf.Page]) -> bool:
    """Give one invoice's pages, *in the batch document*, a resource dictionary of only
    what their contents name, so copying them copies nothing of their neighbours'.

    WeasyPrint gives every page of a batch one shared resource dictionary: copied as it
    is, an invoice's PDF would carry every font and drawing of its batch (a Thai invoice
    the Arabic fonts of its neighbour), and qpdf's ``remove_unreferenced_resources`` on
    the copy costs more than the rest of the split. Here a resource is kept if its name
    occurs in the pages' contents: a byte search (a name that only looks like a use keeps
    a resource it did not need; nothing used is ever dropped). Returns False, changing
    nothing, when the document is not shaped as expected: a page with resources of its
    own, or a form or pattern drawing with the shared resources (whose content could name
    more); the caller then has qpdf trim the copy.
    """
    shared = pages[0].obj.get("/Resources")
    if (
        not isinstance(shared, pikepdf.Dictionary)
        or not shared.is_indirect
        or any(page.obj.get("/Resources", shared).objgen != shared.objgen for page in pages)
    ):
        return False
    names = {
        "/" + match.decode("latin-1")
        for page in pages
        for match in _CONTENT_NAME.findall(_content_bytes(page.obj.get("/Contents")))
    }
    trimmed = pikepdf.Dictionary()
    for key, value in shared.items():
        if key in _NAMED_RESOURCES and isinstance(value, pikepdf.Dictionary):
            # Look up the names used (tens), not the batch's entries (hundreds).
            value = pikepdf.Dictionary({name: value[name] for name in names if name in value})
            if key in ("/XObject", "/Pattern") and not all(
                _has_own_resources(item, shared) for item in value.values()
            ):
                return False  # drawn with the page's resources: its content would count too
        trimmed[key] = value
    own = source.make_indirect(trimmed)
    for page in pages:
        page.obj.Resources = own
    return True


def _has_own_resources(drawing: Any, shared: pikepdf.Dictionary) -> bool:
    drawn = isinstance(drawing, (pikepdf.Dictionary, pikepdf.Stream))
    own = drawing.get("/Resources") if drawn else None
    return own is not None and own.objgen != shared.objgen


def _content_bytes(contents: Any) -> bytes:
    if isinstance(contents, pikepdf.Stream):
        return bytes(contents.read_bytes())
    if isinstance(contents, pikepdf.Array):
        return b"\n".join(bytes(item.read_bytes()) for item in contents)
    return b""
