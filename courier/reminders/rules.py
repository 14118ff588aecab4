"""Reminder rules as values (pure core): what ``data/reminder_rules.yaml`` says, once checked.

A rule says which invoices it applies to (document types, payment status, a minimum still
owed), which date it counts from (its *anchor*) and the *steps*: "7 days after", each with a
channel and a template per language. This module holds those values and their vocabulary
(anchors, channels, languages, document types, payment statuses, defaults);
``courier.reminders.rules_file`` reads and checks the file, ``courier.reminders.previews``
shows each step's text with sample values.

Nothing here sends or schedules anything: ``courier.reminders.schedule`` turns a step's
offset into a moment, and the caller decides what to do with it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from decimal import Decimal
from typing import Final, Literal, cast

from courier.domain import (
    ABBREVIATED_TAX_INVOICE_TYPE_CODES,
    ALL_TYPE_CODES,
    CREDIT_NOTE_TYPE_CODE,
    DEBIT_NOTE_TYPE_CODE,
    PAYMENT_STATUSES,
    RECEIPT_TYPE_CODE,
    TAX_INVOICE_TYPE_CODES,
)
from courier.messages import ON_ISSUE_PLACEHOLDERS

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

_WHEN_RE: Final = re.compile(r"(\d+)\s+(hour|hours|day|days|month|months)\s+(before|after)")
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


# --------------------------------------------------------------------------- parsing


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
