"""What WeasyPrint works out once per batch instead of once per invoice.

The invoices of a batch repeat most of what WeasyPrint computes for them: the same
bilingual labels ("รายการ / Description", "ผู้ซื้อ / Buyer"...), often the same seller,
dates, products and prices, and boxes of the same style in containers of the same size.
WeasyPrint computes each again for every box: it asks Pango to shape and break every line
of text (``split_first_line``), shapes it again to draw it (``draw_text``, a Python loop
over its glyphs), and resolves every box's margins, paddings, widths and borders from its
style (``resolve_percentages``). In a batch of 25 sample invoices more than half of the
lines of text are lines already laid out and drawn in that batch.

While :func:`reusing` is active (:class:`~courier.documents.pdf.PdfRenderer` activates it
around each document it renders), four WeasyPrint functions remember their results for
the rest of the document:

* ``split_first_line(text, style, context, max_width, ...)``, keyed on the text, the style
  object, the width and the other arguments: a hit returns a copy of the remembered
  (inactive) Pango layout wrapper and the same metrics;
* ``strut(style)`` (a line's height and baseline), keyed on the style object;
* ``resolve_percentages(box, containing_block)``, keyed on the box's style object and the
  containing block's size: a hit sets the same used values on the box;
* ``draw_text(stream, textbox, ...)``: the PDF operators written for a line of text, keyed
  on the line's text, style object and spacing. A hit writes the same operators through
  the same stream methods (so the stream's state, such as the current font, changes as it
  would have) with the text matrix moved to the new line's position.

Why this is exact: within one document WeasyPrint never changes a style object once
layout starts (it copies a style before changing it), so the same text, style and width
give the same line, and the same style and containing block the same used values. The
operators of a line of text depend on its position only through the one text matrix that
starts it, which is checked when the line is recorded, and fonts are document-wide, so a
glyph drawn again is already in its font's subset and ``/ToUnicode``. Nothing is
remembered when a call does anything else: a line with a text decoration, an ellipsis or
emoji images (any stream call not in :data:`_REPLAYABLE`), a box whose resolution sets
attributes other than :data:`_USED_VALUES`, a collapsed-border table part or a page.
The memo lives for one document and keeps every style it keyed on, so an ``id()`` stays
that style's while the memo exists.

``tests/integration/test_batch_reuse.py`` renders varied batches with and without reuse
and compares every page's content stream and every embedded font, byte for byte. Outside
:func:`reusing` (the bench's plain WeasyPrint documents, for one) the four functions
behave exactly as WeasyPrint's own.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
import importlib
import inspect
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Final

from weasyprint.formatting_structure import boxes
from weasyprint.layout import percent as weasyprint_percent
from weasyprint.matrix import Matrix
from weasyprint.text import line_break as weasyprint_line_break

_LOG = logging.getLogger(__name__)

#: Stream methods that ``draw_text`` and ``draw_first_line`` call for a plain line of text
#: (the ActualText hook of courier.documents.pdf adds the marked-content pair). A line
#: whose drawing calls anything else is drawn again each time.
_REPLAYABLE: Final = frozenset(
    {
        "set_color",
        "begin_text",
        "set_text_matrix",
        "set_font_size",
        "show_text",
        "set_text_rise",
        "end_text",
        "begin_marked_content",
        "end_marked_content",
    }
)
#: Stream attributes read while drawing a line, which write nothing to the stream
#: (``add_font`` registers a font in the document-wide table once).
_PASSIVE: Final = frozenset({"add_font", "ink_rect", "logical_rect"})

#: The box attributes ``resolve_percentages`` sets (used values, in pixels or "auto").
_USED_VALUES: Final = (
    "margin_top",
    "margin_right",
    "margin_bottom",
    "margin_left",
    "padding_top",
    "padding_right",
    "padding_bottom",
    "padding_left",
    "width",
    "min_width",
    "max_width",
    "height",
    "min_height",
    "max_height",
    "border_top_width",
    "border_right_width",
    "border_bottom_width",
    "border_left_width",
)
_USED_VALUE_NAMES: Final = frozenset(_USED_VALUES)

_Call = tuple[str, tuple[Any, ...], dict[str, Any]]
_MISSING: Final = object()


@dataclass
class BatchMemo:
    """What one document remembers, and how often it was used (for tests and benches)."""

    lines: dict[tuple[Any, ...], tuple[Any, ...]] = field(default_factory=dict)
    struts: dict[int, tuple[Any, Any]] = field(default_factory=dict)
    used_values: dict[tuple[Any, ...], tuple[Any, ...]] = field(default_factory=dict)
    drawings: dict[tuple[Any, ...], tuple[_Call, ...]] = field(default_factory=dict)
    #: Every style used in a key, kept alive so that its ``id()`` stays its own.
    styles: dict[int, Any] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    misses: Counter[str] = field(default_factory=Counter)

    def style_key(self, style: Any) -> int:
        key = id(style)
        if key not in self.styles:
            self.styles[key] = style
        return key


_ACTIVE: contextvars.ContextVar[BatchMemo | None] = contextvars.ContextVar(
    "courier_batch_reuse", default=None
)


@contextlib.contextmanager
def reusing() -> Iterator[BatchMemo]:
    """Remember what the wrapped functions work out until the block ends (one document)."""
    memo = BatchMemo()
    token = _ACTIVE.set(memo)
    try:
        yield memo
    finally:
        _ACTIVE.reset(token)


# ---- layout -------------------------------------------------------------------------------


def _reusing_split_first_line(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def split_first_line(
        text: str,
        style: Any,
        context: Any,
        max_width: Any,
        justification_spacing: Any,
        is_line_start: bool = True,
        minimum: bool = False,
    ) -> Any:
        memo = _ACTIVE.get()
        if memo is None:
            return original(
                text, style, context, max_width, justification_spacing, is_line_start, minimum
            )
        key = (
            text,
            memo.style_key(style),
            max_width,
            justification_spacing,
            is_line_start,
            minimum,
        )
        result = memo.lines.get(key)
        if result is None:
            memo.misses["lines"] += 1
            result = original(
                text, style, context, max_width, justification_spacing, is_line_start, minimum
            )
            # Only an inactive layout (no Pango objects: drawing makes its own) can be
            # copied for another box; WeasyPrint returns them inactive.
            if hasattr(result[0], "layout"):
                return result
            memo.lines[key] = result
        else:
            memo.hits["lines"] += 1
        # Each box gets its own wrapper: drawing activates and deactivates it.
        return (copy.copy(result[0]), *result[1:])

    return split_first_line


def _reusing_strut(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def strut(style: Any) -> Any:
        memo = _ACTIVE.get()
        if memo is None:
            return original(style)
        key = memo.style_key(style)
        result = memo.struts.get(key)
        if result is None:
            memo.misses["struts"] += 1
            result = memo.struts[key] = original(style)
        else:
            memo.hits["struts"] += 1
        return result

    return strut


def _reusing_resolve_percentages(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def resolve_percentages(box: Any, containing_block: Any) -> Any:
        memo = _ACTIVE.get()
        if memo is None or isinstance(box, boxes.PageBox):
            return original(box, containing_block)
        style = box.style
        # Collapsed borders are resolved per cell before this, and kept if set.
        if style["border_collapse"] == "collapse":
            return original(box, containing_block)
        if isinstance(containing_block, boxes.Box):
            size = (containing_block.width, containing_block.height)
        else:
            size = tuple(containing_block)
        key = (memo.style_key(style), *size)
        values = memo.used_values.get(key)
        if values is None:
            memo.misses["used_values"] += 1
            before = dict(vars(box))
            result = original(box, containing_block)
            after = vars(box)
            changed = {
                name for name, value in after.items() if before.get(name, _MISSING) is not value
            }
            if changed <= _USED_VALUE_NAMES and after.keys() >= _USED_VALUE_NAMES:
                memo.used_values[key] = tuple(after[name] for name in _USED_VALUES)
            return result
        memo.hits["used_values"] += 1
        for name, value in zip(_USED_VALUES, values, strict=True):
            setattr(box, name, value)
        return None

    return resolve_percentages


# ---- drawing ------------------------------------------------------------------------------


class _RecordingStream:
    """Passes every call on to the stream and records the ones that write a line of text."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.calls: list[_Call] = []
        self.replayable = True

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._stream, name)
        if name in _PASSIVE:
            return attribute
        if name not in _REPLAYABLE:
            self.replayable = False
            return attribute

        def record(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            return attribute(*args, **kwargs)

        return record


def _text_matrix(textbox: Any) -> tuple[Any, ...]:
    """The text matrix ``draw_text`` starts a line with: its position on the page."""
    values: tuple[Any, ...] = Matrix(
        d=-1, e=textbox.position_x, f=textbox.position_y + textbox.baseline
    ).values
    return values


def _replayable(calls: list[_Call], textbox: Any) -> bool:
    """Whether ``calls`` place the line by one text matrix, the box's own."""
    matrices = [tuple(args) for name, args, _ in calls if name == "set_text_matrix"]
    return matrices in ([], [_text_matrix(textbox)])


def _reusing_draw_text(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def draw_text(
        stream: Any,
        textbox: Any,
        offset_x: Any,
        text_overflow: Any,
        block_ellipsis: Any = "none",
    ) -> Any:
        memo = _ACTIVE.get()
        layout = getattr(textbox, "pango_layout", None)
        if memo is None or layout is None:
            return original(stream, textbox, offset_x, text_overflow, block_ellipsis)
        key = (
            textbox.text,
            getattr(layout, "text", None),
            memo.style_key(textbox.style),
            getattr(layout, "justification_spacing", None),
            getattr(layout, "max_width", None),
            text_overflow,
            block_ellipsis,
        )
        calls = memo.drawings.get(key)
        if calls is None:
            memo.misses["drawings"] += 1
            recorder = _RecordingStream(stream)
            drawn = original(recorder, textbox, offset_x, text_overflow, block_ellipsis)
            if recorder.replayable and _replayable(recorder.calls, textbox):
                memo.drawings[key] = tuple(recorder.calls)
            return drawn
        memo.hits["drawings"] += 1
        for name, args, kwargs in calls:
            getattr(stream, name)(
                *(_text_matrix(textbox) if name == "set_text_matrix" else args), **kwargs
            )
        return None

    return draw_text


# ---- installation -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """A WeasyPrint function to wrap, as the modules that call it imported it."""

    name: str
    defined_in: ModuleType
    parameters: tuple[str, ...]
    wrap: Callable[[Callable[..., Any]], Callable[..., Any]]
    #: Modules (``weasyprint.<...>``) whose global of that name calls are looked up in.
    used_in: tuple[str, ...]


_TARGETS: Final = (
    _Target(
        "split_first_line",
        weasyprint_line_break,
        (
            "text",
            "style",
            "context",
            "max_width",
            "justification_spacing",
            "is_line_start",
            "minimum",
        ),
        _reusing_split_first_line,
        ("layout.inline",),
    ),
    _Target("strut", weasyprint_line_break, ("style",), _reusing_strut, ("layout.inline",)),
    _Target(
        "resolve_percentages",
        weasyprint_percent,
        ("box", "containing_block"),
        _reusing_resolve_percentages,
        (
            "layout.block",
            "layout.inline",
            "layout.table",
            "layout.float",
            "layout.page",
            "layout.absolute",
            "layout.column",
            "layout.grid",
        ),
    ),
    _Target(
        "draw_text",
        importlib.import_module("weasyprint.draw.text"),
        ("stream", "textbox", "offset_x", "text_overflow", "block_ellipsis"),
        _reusing_draw_text,
        ("draw",),
    ),
)


@functools.cache
def install() -> bool:
    """Wrap the functions of :data:`_TARGETS` where WeasyPrint calls them, once per
    process. A function that is not what this module expects (another WeasyPrint version)
    is left alone, with a warning: that work is then done for every invoice, with the same
    result. Returns whether all were wrapped."""
    complete = True
    for target in _TARGETS:
        original = getattr(target.defined_in, target.name, None)
        if not callable(original) or (
            tuple(inspect.signature(original).parameters) != target.parameters
        ):
            _LOG.warning("WeasyPrint's %s is not as expected: not reused", target.name)
            complete = False
            continue
        wrapped = target.wrap(original)
        for module_name in target.used_in:
            module = importlib.import_module(f"weasyprint.{module_name}")
            if getattr(module, target.name, None) is original:
                setattr(module, target.name, wrapped)
            else:
                _LOG.warning(
                    "weasyprint.%s has its own %s: not reused there", module_name, target.name
                )
                complete = False
    return complete
