"""The reminder rules file (``data/reminder_rules.yaml``): load and validate (pure core).

``parse_rules`` checks the whole file and reports every problem at once, each naming its rule
and field (``steps[2].channel``, list positions counted from 0), so a person can fix the file
in one go; a typo in a key is an error, never silently ignored, because an ignored
``stop_when_payed:`` would text buyers who already paid. What it returns are the values of
``courier.reminders.rules``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, cast

import yaml

from courier.domain import ALL_TYPE_CODES, PAYMENT_STATUSES
from courier.messages import TemplateError, validate_template
from courier.reminders.rules import (
    _WHEN_HELP,
    ALL_PAYMENT_STATUSES,
    ANCHORS,
    CHANNELS,
    DEFAULT_DOCUMENT_TYPES,
    DEFAULT_GRACE,
    DEFAULT_PAYMENT_STATUSES,
    DEFAULT_SEND_TIME,
    DOCUMENT_TYPE_ALIASES,
    ID_PATTERN,
    LANGUAGES,
    MIN_GRACE,
    PAYMENT_STATUS_NAMES,
    REMINDER_PLACEHOLDERS,
    Anchor,
    Offset,
    Rule,
    RuleSet,
    Step,
    parse_when,
    slug,
)

#: The file's spelling of each recorded status, for messages.
_STATUS_SPELLING: Final = {"unpaid": "unpaid", "partial": "partially_paid", "paid": "paid"}

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

_GRACE_RE: Final = re.compile(r"(\d+)\s*(hour|hours|day|days)")
_TIME_RE: Final = re.compile(r"(\d{1,2}):(\d{2})")
_CURRENCY_RE: Final = re.compile(r"[A-Z]{3}")


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
