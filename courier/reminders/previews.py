"""Reminder rule previews (pure core): each step's text in each language, filled with sample
values and counted as SMS segments (what ``courier reminders rules`` prints)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from courier.messages import count_segments, format_amount, render_sms
from courier.reminders.rules import Rule, RuleSet, Step


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
