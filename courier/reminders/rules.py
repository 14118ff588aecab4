"""The reminder rules file (``data/reminder_rules.yaml``): load, validate, preview (pure core).

A rule says which invoices it applies to (document types, payment status, a minimum still
owed), which date it counts from (its *anchor*) and the *steps*: "7 days after", each with a
channel and a template per language. ``parse_rules`` checks the whole file and reports every
problem at once, each naming its rule and field (``steps[2].channel``, list positions counted
from 0), so a person can fix the file in one go; a typo in a key is an error, never silently
ignored, because an ignored ``stop_when_payed:`` would text buyers who already paid.

Nothing here sends or schedules anything: ``courier.reminders.schedule`` turns a step's
offset into a moment, and the caller decides what to do with it.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, Literal, cast

import yaml

from courier.domain import (
    ABBREVIATED_TAX_INVOICE_TYPE_CODES,
    ALL_TYPE_CODES,
    CREDIT_NOTE_TYPE_CODE,
    DEBIT_NOTE_TYPE_CODE,
    PAYMENT_STATUSES,
    RECEIPT_TYPE_CODE,
    TAX_INVOICE_TYPE_CODES,
)
from courier.messages import (
    ON_ISSUE_PLACEHOLDERS,
    TemplateError,
    count_segments,
    format_amount,
    render_sms,
    validate_template,
)

Unit = Literal["instant", "hours", "days", "months"]
Direction = Literal["before", "after"]
Anchor = Literal["issue_date", "due_date", "created_date", "paid_date"]

#: Placeholders a reminder template may use: the on-issue ones and what a payment changes.
REMINDER_PLACEHOLDERS: Final = ON_ISSUE_PLACEHOLDERS | {
    "amount_due",
    "amount_paid",
    "days_overdue",
    "days_until_due",
}

ANCHORS: Final[tuple[Anchor, ...]] = ("issue_date", "due_date", "created_date", "paid_date")
CHANNELS: Final[Mapping[str, tuple[str, ...]]] = {
    "sms": ("sms",),
    "email": ("email",),
    "both": ("sms", "email"),
}
LANGUAGES: Final = ("en", "th", "ar")
DOCUMENT_TYPE_ALIASES: Final[Mapping[str, frozenset[str]]] = {
    "tax_invoice": TAX_INVOICE_TYPE_CODES,
    "receipt": frozenset({RECEIPT_TYPE_CODE}),
    "debit_note": frozenset({DEBIT_NOTE_TYPE_CODE}),
    "credit_note": frozenset({CREDIT_NOTE_TYPE_CODE}),
    "abbreviated_tax_invoice": ABBREVIATED_TAX_INVOICE_TYPE_CODES,
    "all": ALL_TYPE_CODES,
}
#: Payment statuses as the file spells them -> as Courier records them (courier.domain).
PAYMENT_STATUS_NAMES: Final[Mapping[str, str]] = {
    "unpaid": "unpaid",
    "partially_paid": "partial",
    "partial": "partial",
    "paid": "paid",
}
ALL_PAYMENT_STATUSES: Final = frozenset(PAYMENT_STATUSES)
#: The file's spelling of each recorded status, for messages.
_STATUS_SPELLING: Final = {"unpaid": "unpaid", "partial": "partially_paid", "paid": "paid"}

DEFAULT_DOCUMENT_TYPES: Final = TAX_INVOICE_TYPE_CODES | {DEBIT_NOTE_TYPE_CODE}
DEFAULT_PAYMENT_STATUSES: Final = frozenset({"unpaid", "partial"})
DEFAULT_SEND_TIME: Final = time(9, 0)
DEFAULT_GRACE: Final = timedelta(days=3)
MIN_GRACE: Final = timedelta(hours=1)

#: Rule and step ids: stable keys (they end up in the outbox's intent keys).
ID_PATTERN: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_ID_MAX: Final = 40

#: Nominal hours per unit, to order steps: a month counts as 30 days.
_NOMINAL_HOURS: Final[Mapping[str, int]] = {"instant": 0, "hours": 1, "days": 24, "months": 720}
#: The furthest a step may lie from its anchor: ten years keeps date arithmetic in range
#: and catches a typo such as "70000 days".
_MAX_AMOUNT: Final[Mapping[str, int]] = {"hours": 87_840, "days": 3_660, "months": 120}

_ANCHOR_WORDS: Final[Mapping[str, str]] = {
    "issue_date": "the issue date",
    "due_date": "the due date",
    "created_date": "the creation date",
    "paid_date": "the payment date",
}

_TOP_KEYS: Final = ("version", "defaults", "rules")
_DEFAULTS_KEYS: Final = ("send_time", "grace")
_RULE_KEYS: Final = (
    "id",
    "name",
    "active",
    "document_types",
    "payment_status",
    "anchor",
    "min_amount_due",
    "stop_when_paid",
    "send_time",
    "grace",
    "steps",
)
_STEP_KEYS: Final = ("id", "when", "channel", "template")

_WHEN_RE: Final = re.compile(r"(\d+)\s+(hour|hours|day|days|month|months)\s+(before|after)")
_GRACE_RE: Final = re.compile(r"(\d+)\s*(hour|hours|day|days)")
_TIME_RE: Final = re.compile(r"(\d{1,2}):(\d{2})")
_CURRENCY_RE: Final = re.compile(r"[A-Z]{3}")
_WHEN_HELP: Final = "write 'instantly' or 'N hours|days|months before|after', e.g. '7 days after'"


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Offset:
    """How far a step lies from its rule's anchor: ``7 days after``, ``instantly``."""

    amount: int  # >= 0; 0 for instant
    unit: Unit
    direction: Direction  # "after" for instant

    def __post_init__(self) -> None:
        if self.unit == "instant":
            if self.amount != 0 or self.direction != "after":
                raise ValueError("an instant offset has amount 0 and direction 'after'")
        elif self.unit not in _NOMINAL_HOURS or self.amount < 1:
            raise ValueError(f"not an offset: {self.amount!r} {self.unit!r}")
        if self.direction not in ("before", "after"):
            raise ValueError(f"direction must be 'before' or 'after', not {self.direction!r}")

    @property
    def signed(self) -> int:
        """``amount``, negative for ``before``."""
        return -self.amount if self.direction == "before" else self.amount

    @property
    def nominal_hours(self) -> int:
        """Signed length in hours with a month as 30 days: how steps are ordered."""
        return self.signed * _NOMINAL_HOURS[self.unit]

    @property
    def default_id(self) -> str:
        """The step id when the file gives none: ``7-days-after``, ``instantly``."""
        return str(self).replace(" ", "-")

    def __str__(self) -> str:
        """As the file writes it: ``7 days after``, ``1 hour before``, ``instantly``."""
        if self.unit == "instant":
            return "instantly"
        return f"{self.amount} {self._unit_word()} {self.direction}"

    def describe(self, anchor: str) -> str:
        """``7 days after the due date``, ``instantly at the issue date``."""
        words = _ANCHOR_WORDS.get(anchor, "the " + anchor.replace("_", " "))
        if self.unit == "instant":
            return f"instantly at {words}"
        return f"{self.amount} {self._unit_word()} {self.direction} {words}"

    def _unit_word(self) -> str:
        return self.unit if self.amount != 1 else self.unit[:-1]


INSTANTLY: Final = Offset(0, "instant", "after")


@dataclass(frozen=True)
class Step:
    id: str
    offset: Offset
    channels: tuple[str, ...]  # ("sms",), ("email",) or ("sms", "email")
    # language -> template text; always has "en". Not hashed (a dict), compared.
    templates: Mapping[str, str] = field(hash=False)

    def template_for(self, language: str) -> str:
        """The template in ``language``, else the English one."""
        return self.templates.get((language or "").strip().lower()) or self.templates["en"]


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    active: bool
    document_types: frozenset[str]  # type codes
    payment_statuses: frozenset[str]  # subset of {"unpaid", "partial", "paid"}
    anchor: Anchor
    steps: tuple[Step, ...]  # in offset order
    # One minimum for every currency, one per currency (others: none), or none.
    min_amount_due: Decimal | Mapping[str, Decimal] | None = field(hash=False)
    stop_when_paid: bool
    send_time: time  # the seller's local time at which day and month steps fall due
    grace: timedelta  # a step found later than this after it fell due is skipped

    def minimum_for(self, currency: str) -> Decimal:
        """The least amount due, in ``currency``, for this rule to remind; 0 when none."""
        minimum = self.min_amount_due
        if minimum is None:
            return Decimal(0)
        if isinstance(minimum, Decimal):
            return minimum
        return minimum.get((currency or "").strip().upper(), Decimal(0))

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(f"rule {self.id!r} has no step {step_id!r}")


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    source: str

    @property
    def active(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if rule.active)

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(f"{self.source}: no rule {rule_id!r}")


@dataclass(frozen=True)
class RuleProblem:
    """One problem: ``rule`` is the rule's id (else its name, else ``rules[3]``; ``-`` for
    the file as a whole), ``field`` a path inside it such as ``steps[2].channel``."""

    rule: str
    field: str
    message: str

    def line(self, source: str) -> str:
        return f"{source}: rule '{self.rule}': field '{self.field}': {self.message}"


class RuleFileError(ValueError):
    """A rules file that cannot be used; ``problems`` lists everything wrong with it."""

    def __init__(self, source: str, problems: list[RuleProblem]) -> None:
        super().__init__(source, problems)  # both in args, so the error pickles
        self.source = source
        self.problems = problems

    def __str__(self) -> str:
        return "\n".join(problem.line(self.source) for problem in self.problems)


# --------------------------------------------------------------------------- parsing


def parse_rules(text: str, source: str = "<rules>") -> RuleSet:
    """The rules in ``text`` (YAML); raises ``RuleFileError`` listing every problem.

    An empty document (nothing, or only comments) is a rule set with no rules.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleFileError(source, [RuleProblem("-", "-", _yaml_message(exc))]) from None
    if data is None:
        return RuleSet((), source)
    checker = _Checker()
    rules = checker.file(data)
    if checker.problems:
        raise RuleFileError(source, checker.problems)
    return RuleSet(tuple(rules), source)


def load_rules(path: Path) -> RuleSet:
    """The rules in the file at ``path``; a missing file is a rule set with no rules.

    Raises ``RuleFileError`` for a file that cannot be read or is not valid.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return RuleSet((), source)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise RuleFileError(source, [RuleProblem("-", "-", f"cannot read it: {reason}")]) from None
    return parse_rules(text, source)


def parse_when(text: str) -> Offset:
    """``"7 days after"`` -> ``Offset(7, "days", "after")``; raises ``ValueError``."""
    words = " ".join(str(text).split()).lower()
    if words == "instantly":
        return INSTANTLY
    match = _WHEN_RE.fullmatch(words)
    if match is None:
        raise ValueError(f"{text!r} is not a time: {_WHEN_HELP}")
    amount = int(match.group(1))
    unit = cast(Unit, match.group(2).rstrip("s") + "s")
    direction = cast(Direction, match.group(3))
    if amount == 0:
        if direction == "before":
            raise ValueError(f"{text!r} is not a time before anything: write 'instantly'")
        return INSTANTLY
    if amount > _MAX_AMOUNT[unit]:
        raise ValueError(f"{text!r} is too far away: at most {_MAX_AMOUNT[unit]} {unit}")
    return Offset(amount, unit, direction)


def slug(name: str) -> str:
    """A rule id made from its name: ``Overdue chase (7/14/21 days)`` ->
    ``overdue-chase-7-14-21-days`` (ASCII letters and digits only; may be empty)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return text[:_ID_MAX].rstrip("-_")


def _yaml_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return f"not valid YAML: {problem}"
    return f"not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"


def _show(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _not_one_of(value: object, choices: tuple[str, ...] | list[str]) -> str:
    return f"{_show(value)} is not one of {', '.join(choices)}"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Invalid(Exception):
    """One field's problem (the message); ``_Checker`` records it and carries on."""


@dataclass
class _Defaults:
    send_time: time = DEFAULT_SEND_TIME
    grace: timedelta = DEFAULT_GRACE


class _Checker:
    """Walks the whole file, collecting problems instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[RuleProblem] = []

    def add(self, rule: str, path: str, message: str) -> None:
        self.problems.append(RuleProblem(rule, path, message))

    def unknown_keys(
        self, rule: str, mapping: Mapping[Any, Any], known: tuple[str, ...], prefix: str = ""
    ) -> set[str]:
        """Report keys not in ``known``; returns the known keys they look like (a typo for
        a required key then needs no second "required" problem)."""
        suggested: set[str] = set()
        for key in mapping:
            name = str(key)
            if name in known:
                continue
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            if close:
                suggested.add(close[0])
                hint = f"did you mean '{close[0]}'?"
            else:
                hint = f"known fields: {', '.join(known)}"
            self.add(rule, prefix + name, f"unknown field ({hint})")
        return suggested

    # ---------------------------------------------------------------- the file

    def file(self, data: object) -> list[Rule]:
        if not isinstance(data, dict):
            self.add("-", "-", "the file must be a mapping with version, defaults and rules")
            return []
        suggested = self.unknown_keys("-", data, _TOP_KEYS)
        version = data.get("version")
        if "version" not in data:
            if "version" not in suggested:
                self.add("-", "version", "required: write 'version: 1' at the top")
        elif not (_is_int(version) and version == 1):
            self.add("-", "version", f"{_show(version)} is not a version this Courier reads (1)")
        defaults = self.defaults(data.get("defaults"))
        raw_rules = data.get("rules")
        if "rules" not in data:
            if "rules" not in suggested:
                self.add("-", "rules", "required: a list of rules (may be empty: [])")
            return []
        if raw_rules is None:
            return []  # "rules:" with every rule commented out
        if not isinstance(raw_rules, list):
            self.add("-", "rules", "must be a list of rules (each starting with '- id: ...')")
            return []
        rules: list[Rule] = []
        first_index: dict[str, int] = {}
        for index, raw in enumerate(raw_rules):
            rule = self.rule(index, raw, defaults, first_index)
            if rule is not None:
                rules.append(rule)
        return rules

    def defaults(self, raw: object) -> _Defaults:
        result = _Defaults()
        if raw is None:
            return result
        if not isinstance(raw, dict):
            self.add("-", "defaults", "must be a mapping (send_time, grace)")
            return result
        self.unknown_keys("-", raw, _DEFAULTS_KEYS, "defaults.")
        if "send_time" in raw:
            try:
                result.send_time = _send_time(raw["send_time"])
            except _Invalid as exc:
                self.add("-", "defaults.send_time", str(exc))
        if "grace" in raw:
            try:
                result.grace = _grace(raw["grace"])
            except _Invalid as exc:
                self.add("-", "defaults.grace", str(exc))
        return result

    # ---------------------------------------------------------------- one rule

    def rule(
        self, index: int, raw: object, defaults: _Defaults, first_index: dict[str, int]
    ) -> Rule | None:
        position = f"rules[{index}]"
        if not isinstance(raw, dict):
            self.add(position, "-", "a rule must be a mapping of fields (id, name, anchor, ...)")
            return None
        raw_id, raw_name = raw.get("id"), raw.get("name")
        if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) and str(raw_id).strip():
            label = str(raw_id).strip()
        elif isinstance(raw_name, str) and raw_name.strip():
            label = raw_name.strip()
        else:
            label = position
        before = len(self.problems)

        def check(path: str, parse: Any, *args: Any) -> Any:
            try:
                return parse(*args)
            except _Invalid as exc:
                self.add(label, path, str(exc))
                return None

        suggested = self.unknown_keys(label, raw, _RULE_KEYS)

        def required(key: str, hint: str) -> bool:
            if key in raw:
                return True
            if key not in suggested:
                self.add(label, key, f"required: {hint}")
            return False

        name: str | None = None
        if required("name", "what people see, e.g. 'Overdue chase (7/14/21 days)'"):
            name = check("name", _name, raw["name"])
        rule_id: str | None = None
        if "id" in raw:
            rule_id = check("id", _id, raw["id"])
        elif name is not None:
            rule_id = slug(name)
            if not rule_id:
                self.add(label, "id", "cannot be made from the name (no a-z or 0-9): add an id")
                rule_id = None
        if rule_id is not None:
            if rule_id in first_index:
                origin = "" if "id" in raw else " (made from the name)"
                self.add(
                    label,
                    "id",
                    f"{rule_id!r}{origin} is already the id of rules[{first_index[rule_id]}]; "
                    "rule ids must be unique",
                )
            else:
                first_index[rule_id] = index
        active = check("active", _flag, raw["active"]) if "active" in raw else True
        document_types = (
            check("document_types", _document_types, raw["document_types"])
            if "document_types" in raw
            else DEFAULT_DOCUMENT_TYPES
        )
        statuses = (
            check("payment_status", _payment_statuses, raw["payment_status"])
            if "payment_status" in raw
            else DEFAULT_PAYMENT_STATUSES
        )
        anchor = None
        if required("anchor", f"one of {', '.join(ANCHORS)}"):
            anchor = check("anchor", _anchor, raw["anchor"])
        only_paid = statuses == frozenset({"paid"})
        if anchor == "paid_date" and statuses is not None and not only_paid:
            shown = ", ".join(_STATUS_SPELLING[s] for s in PAYMENT_STATUSES if s in statuses)
            self.add(
                label,
                "anchor",
                "paid_date needs payment_status: paid (only a paid invoice has a payment "
                f"date), but this rule is for {shown}",
            )
        minimum = (
            self.min_amount_due(label, raw["min_amount_due"]) if "min_amount_due" in raw else None
        )
        stop_when_paid: bool | None = not only_paid
        if "stop_when_paid" in raw:
            stop_when_paid = check("stop_when_paid", _flag, raw["stop_when_paid"])
            if stop_when_paid and only_paid:
                self.add(
                    label,
                    "stop_when_paid",
                    "cannot be true for a rule that is only for paid invoices "
                    "(payment_status: paid): it would never send",
                )
        send_time = (
            check("send_time", _send_time, raw["send_time"])
            if "send_time" in raw
            else defaults.send_time
        )
        grace = check("grace", _grace, raw["grace"]) if "grace" in raw else defaults.grace
        steps: tuple[Step, ...] | None = None
        if required("steps", "a list of at least one step ('- when: 7 days after')"):
            steps = self.steps(label, raw["steps"])
        if len(self.problems) > before:
            return None
        assert rule_id is not None and name is not None and steps is not None
        assert anchor is not None
        return Rule(
            id=rule_id,
            name=name,
            active=active,
            document_types=document_types,
            payment_statuses=statuses,
            anchor=anchor,
            steps=steps,
            min_amount_due=minimum,
            stop_when_paid=bool(stop_when_paid),
            send_time=send_time,
            grace=grace,
        )

    # ---------------------------------------------------------------- steps

    def steps(self, label: str, raw: object) -> tuple[Step, ...] | None:
        if not isinstance(raw, list) or not raw:
            self.add(label, "steps", "must be a list of at least one step ('- when: ...')")
            return None
        before = len(self.problems)
        steps: list[Step] = []
        previous: tuple[int, Offset] | None = None  # the last step with a good offset
        ids: dict[str, tuple[int, bool]] = {}  # id -> (its step's index, given explicitly)
        for index, item in enumerate(raw):
            prefix = f"steps[{index}]"
            if not isinstance(item, dict):
                self.add(label, prefix, "a step must be a mapping (when, channel, template)")
                continue
            suggested = self.unknown_keys(label, item, _STEP_KEYS, prefix + ".")
            offset: Offset | None = None
            if "when" in item:
                try:
                    offset = _when(item["when"])
                except _Invalid as exc:
                    self.add(label, prefix + ".when", str(exc))
            elif "when" not in suggested:
                self.add(label, prefix + ".when", f"required: {_WHEN_HELP}")
            if offset is not None:
                if previous is not None and offset.nominal_hours <= previous[1].nominal_hours:
                    at, earlier = previous
                    relation = (
                        "falls at the same time as"
                        if offset.nominal_hours == earlier.nominal_hours
                        else "comes before"
                    )
                    self.add(
                        label,
                        prefix + ".when",
                        f"'{offset}' {relation} steps[{at}] ('{earlier}'): list the steps in the "
                        "order they fall due, each at its own time (a month counts as 30 days)",
                    )
                else:
                    previous = (index, offset)
            step_id: str | None = None
            explicit = "id" in item
            if explicit:
                try:
                    step_id = _id(item["id"])
                except _Invalid as exc:
                    self.add(label, prefix + ".id", str(exc))
            elif offset is not None:
                step_id = offset.default_id
            if step_id is not None:
                if step_id in ids:
                    at, other_explicit = ids[step_id]
                    # Two steps at one offset without ids: the "when" problem says it all.
                    if explicit or other_explicit:
                        self.add(
                            label,
                            prefix + ".id",
                            f"{step_id!r} is already the id of steps[{at}]; step ids must be "
                            "unique within a rule",
                        )
                else:
                    ids[step_id] = (index, explicit)
            channels: tuple[str, ...] = CHANNELS["sms"]
            if "channel" in item:
                try:
                    channels = _channel(item["channel"])
                except _Invalid as exc:
                    self.add(label, prefix + ".channel", str(exc))
            templates: dict[str, str] | None = None
            if "template" in item:
                templates = self.templates(label, prefix + ".template", item["template"])
            elif "template" not in suggested:
                self.add(label, prefix + ".template", "required: the text to send")
            if offset is not None and step_id is not None and templates:
                steps.append(Step(step_id, offset, channels, templates))
        return tuple(steps) if len(self.problems) == before else None

    def min_amount_due(self, label: str, raw: object) -> Decimal | dict[str, Decimal] | None:
        if raw is None:
            return None
        if not isinstance(raw, dict):
            try:
                return _amount(raw)
            except _Invalid as exc:
                self.add(label, "min_amount_due", f"{exc}: give a number, or e.g. {{THB: 500}}")
                return None
        result: dict[str, Decimal] = {}
        for key, value in raw.items():
            path = f"min_amount_due.{key}"
            currency = str(key).strip().upper()
            if not _CURRENCY_RE.fullmatch(currency):
                self.add(label, path, f"{_show(key)} is not a currency code (THB, SAR, EGP, ...)")
            elif currency in result:
                self.add(label, path, f"{currency} is given twice")
            else:
                try:
                    result[currency] = _amount(value)
                except _Invalid as exc:
                    self.add(label, path, str(exc))
        return result

    def templates(self, label: str, path: str, raw: object) -> dict[str, str] | None:
        if isinstance(raw, str):
            try:
                return {"en": _template(raw)}  # one text for every language
            except _Invalid as exc:
                self.add(label, path, str(exc))
                return None
        if not isinstance(raw, dict):
            self.add(label, path, "must be a text, or a mapping of language (en, th, ar) to text")
            return None
        before = len(self.problems)
        result: dict[str, str] = {}
        for key, text in raw.items():
            language = str(key).strip().lower()
            if language not in LANGUAGES:
                self.add(label, f"{path}.{key}", _not_one_of(str(key), LANGUAGES))
                continue
            if language in result:
                self.add(label, f"{path}.{key}", f"the {language!r} text is given twice")
                continue
            try:
                result[language] = _template(text)
            except _Invalid as exc:
                self.add(label, f"{path}.{key}", str(exc))
        if "en" not in result and not any(str(k).strip().lower() == "en" for k in raw):
            self.add(label, f"{path}.en", "required: the English text, sent in any other language")
        if len(self.problems) > before:
            return None
        # English first, so previews and reports read the same way for every rule.
        return {"en": result["en"], **{k: v for k, v in result.items() if k != "en"}}


# --------------------------------------------------------------------------- fields


def _name(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise _Invalid("must be a non-empty text")
    return raw.strip()


def _id(raw: object) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise _Invalid("must be a text such as 'overdue-chase'")
    text = str(raw).strip()
    if not ID_PATTERN.fullmatch(text):
        hint = slug(text)
        example = f" (e.g. '{hint}')" if hint and hint != text else ""
        raise _Invalid(
            f"{_show(raw)} is not a valid id: up to 40 of a-z, 0-9, '_' and '-', "
            f"starting with a letter or digit{example}"
        )
    return text


def _flag(raw: object) -> bool:
    if not isinstance(raw, bool):
        raise _Invalid(f"{_show(raw)} is not true or false")
    return raw


def _one_or_list(raw: object) -> list[object]:
    if isinstance(raw, list):
        if not raw:
            raise _Invalid("must name at least one (or 'all')")
        return raw
    return [raw]


def _document_types(raw: object) -> frozenset[str]:
    codes: set[str] = set()
    for item in _one_or_list(raw):
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise _Invalid(f"{_show(item)} is not a document type")
        text = str(item).strip()
        if text.lower() in DOCUMENT_TYPE_ALIASES:
            codes |= DOCUMENT_TYPE_ALIASES[text.lower()]
        elif text.upper() in ALL_TYPE_CODES:
            codes.add(text.upper())
        else:
            raise _Invalid(
                f"{_show(item)} is not a document type: use {', '.join(DOCUMENT_TYPE_ALIASES)} "
                f"or a type code ({', '.join(sorted(ALL_TYPE_CODES))})"
            )
    return frozenset(codes)


def _payment_statuses(raw: object) -> frozenset[str]:
    statuses: set[str] = set()
    for item in _one_or_list(raw):
        text = item.strip().lower() if isinstance(item, str) else item
        if text == "all":
            statuses |= ALL_PAYMENT_STATUSES
        elif isinstance(text, str) and text in PAYMENT_STATUS_NAMES:
            statuses.add(PAYMENT_STATUS_NAMES[text])
        else:
            raise _Invalid(_not_one_of(item, ["unpaid", "partially_paid", "paid", "all"]))
    return frozenset(statuses)


def _anchor(raw: object) -> Anchor:
    text = raw.strip().lower() if isinstance(raw, str) else raw
    if text not in ANCHORS:
        raise _Invalid(_not_one_of(raw, ANCHORS))
    return cast(Anchor, text)


def _channel(raw: object) -> tuple[str, ...]:
    text = raw.strip().lower() if isinstance(raw, str) else raw
    if not isinstance(text, str) or text not in CHANNELS:
        raise _Invalid(_not_one_of(raw, list(CHANNELS)))
    return CHANNELS[text]


def _when(raw: object) -> Offset:
    if not isinstance(raw, str):
        raise _Invalid(f"{_show(raw)} is not a time: {_WHEN_HELP}")
    try:
        return parse_when(raw)
    except ValueError as exc:
        raise _Invalid(str(exc)) from None


def _template(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise _Invalid("must be a non-empty text")
    try:
        validate_template(raw, REMINDER_PLACEHOLDERS)
    except TemplateError as exc:
        raise _Invalid(str(exc)) from None
    return raw.strip()


def _send_time(raw: object) -> time:
    if _is_int(raw):
        # YAML 1.1 reads an unquoted 9:30 as the number 570 (base 60).
        minutes = cast(int, raw)
        raise _Invalid(
            f"{minutes} is a number: YAML reads an unquoted time as one, so write it in quotes, "
            f'e.g. "{minutes // 60:02d}:{minutes % 60:02d}"'
        )
    match = _TIME_RE.fullmatch(raw.strip()) if isinstance(raw, str) else None
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise _Invalid(f'{_show(raw)} is not a time of day: write "HH:MM", e.g. "09:00"')
    return time(int(match.group(1)), int(match.group(2)))


def _grace(raw: object) -> timedelta:
    if _is_int(raw):
        grace = timedelta(days=cast(int, raw))
    else:
        match = _GRACE_RE.fullmatch(" ".join(raw.split()).lower()) if isinstance(raw, str) else None
        if match is None:
            raise _Invalid(f"{_show(raw)} is not a duration: write 'N hours' or 'N days'")
        amount = int(match.group(1))
        grace = timedelta(hours=amount) if match.group(2).startswith("hour") else timedelta(amount)
    if grace < MIN_GRACE:
        raise _Invalid(f"{_show(raw)} is too short: at least 1 hour (a run takes time)")
    return grace


def _amount(raw: object) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise _Invalid(f"{_show(raw)} is not an amount")
    try:
        # A YAML float goes through its shortest text (99.99, not 99.9899999...).
        amount = Decimal(str(raw).strip().replace("_", ""))
    except InvalidOperation:
        raise _Invalid(f"{_show(raw)} is not an amount") from None
    if not amount.is_finite() or amount < 0:
        raise _Invalid(f"{_show(raw)} is not an amount of 0 or more")
    return amount


# --------------------------------------------------------------------------- previews


def sample_values(language: str) -> dict[str, str]:
    """Realistic values of ``REMINDER_PLACEHOLDERS`` for previews and segment counts.

    Lengths matter more than content: a link as long as the document store's
    (``https://.../d/<32-char token>``), names and amounts of the usual size, in the
    buyer's script for ``th`` and ``ar`` (both force UCS-2 anyway).
    """
    link = "https://documents.courier.example/d/Xq7Rk2mVb9TzLp4NwY8sHc3JdF6gQa1E"
    common = {
        "number": "INV-2026-000123",
        "amount": format_amount(Decimal("12345.00")),
        "amount_due": format_amount(Decimal("8345.00")),
        "amount_paid": format_amount(Decimal("4000.00")),
        "due_date": "2026-07-15",
        "days_overdue": "7",
        "days_until_due": "3",
        "link": link,
    }
    by_language = {
        "th": {"seller": "บริษัท สยามเทรดดิ้ง จำกัด", "buyer": "ร้านสมใจพาณิชย์", "currency": "THB"},
        "ar": {"seller": "شركة الرياض للتجارة", "buyer": "محمد العتيبي", "currency": "SAR"},
    }
    english = {"seller": "Siam Trading Co., Ltd.", "buyer": "Somchai Store", "currency": "THB"}
    return {**common, **by_language.get((language or "").strip().lower(), english)}


@dataclass(frozen=True)
class TemplateReport:
    """One step's text in one language, filled with ``sample_values``, as an SMS."""

    rule_id: str
    step_id: str
    language: str
    encoding: str  # "GSM-7" or "UCS-2"
    segments: int
    characters: int  # len(text)
    text: str


def template_reports(rules: RuleSet) -> list[TemplateReport]:
    """Every step's every language of every rule (active or not), rendered with
    ``sample_values`` and counted with ``courier.messages.count_segments``.

    A step after (before) the due date shows its own day count in ``{days_overdue}``
    (``{days_until_due}``), so the 21-day step previews as 21 days overdue.
    """
    reports: list[TemplateReport] = []
    for rule in rules.rules:
        for step in rule.steps:
            for language, template in step.templates.items():
                values = sample_values(language)
                values.update(_step_days(rule, step))
                text = render_sms(template, **values)
                info = count_segments(text)
                reports.append(
                    TemplateReport(
                        rule.id, step.id, language, info.encoding, info.segments, len(text), text
                    )
                )
    return reports


def _step_days(rule: Rule, step: Step) -> dict[str, str]:
    offset = step.offset
    if rule.anchor != "due_date" or offset.unit not in ("days", "months"):
        return {}
    days = str(offset.amount * (30 if offset.unit == "months" else 1))
    return {"days_overdue": days} if offset.direction == "after" else {"days_until_due": days}
