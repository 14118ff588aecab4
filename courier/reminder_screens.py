"""What the dashboard's reminder views show (pure: rules, ledger rows and previews in,
tables a person reads out): the rules with each step's SMS size, one invoice's reminder
history and next step, and the preview of the next run with its cost."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import pandas as pd

from courier.reminders.planning import NextStep
from courier.reminders.previews import template_reports
from courier.reminders.rules import RuleSet
from courier.screens import DISPLAY_TZ

HISTORY_COLUMNS: Final = ("Step", "Channel", "When", "Status", "Reason", "By", "Charge")
PREVIEW_COLUMNS: Final = ("Invoice", "Step", "To", "Segments", "Cost")
#: How a skip's reason code reads in counts (``courier.reminders.planning.SKIP_REASONS``).
SKIP_LABELS: Final[Mapping[str, str]] = {
    "grace_passed": "Window passed (not sent late)",
    "paid": "Paid",
    "below_minimum": "Below the minimum amount due",
    "paused": "Paused",
}


def _local_text(moment: Any) -> str:
    if moment is None or pd.isna(moment):
        return ""
    return pd.Timestamp(moment).tz_convert(DISPLAY_TZ).strftime("%Y-%m-%d %H:%M")


def rules_table(rules: RuleSet) -> pd.DataFrame:
    """One row per step of every rule: when, channel, and each language's SMS size with
    sample values (what ``courier reminders rules`` prints)."""
    sizes: dict[tuple[str, str], list[str]] = {}
    for report in template_reports(rules):
        sizes.setdefault((report.rule_id, report.step_id), []).append(
            f"{report.language}: {report.segments} ({report.encoding})"
        )
    rows = [
        {
            "Rule": rule.name,
            "Active": "yes" if rule.active else "no",
            "Step": step.id,
            "When": step.offset.describe(rule.anchor),
            "Channel": "+".join(step.channels),
            "SMS segments": ", ".join(sizes.get((rule.id, step.id), [])),
            "Stops when paid": "yes" if rule.stop_when_paid else "no",
        }
        for rule in rules.rules
        for step in rule.steps
    ]
    columns = ["Rule", "Active", "Step", "When", "Channel", "SMS segments", "Stops when paid"]
    return pd.DataFrame(rows, columns=columns)


def step_label(rules: RuleSet, rule_id: str, step_id: str) -> str:
    """ "Overdue chase (7/14/21 days): 7 days after the due date" (ids if the rule is gone)."""
    try:
        rule = rules.rule(rule_id)
        return f"{rule.name}: {rule.step(step_id).offset.describe(rule.anchor)}"
    except KeyError:
        return f"{rule_id}: {step_id}"


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def history_table(history: pd.DataFrame, rules: RuleSet) -> pd.DataFrame:
    """One invoice's ``reminder_history`` rows as a person reads them, newest first."""
    rows = []
    for row in history.to_dict("records"):
        charge = row["charge"]
        sent_at = row["sent_at"]
        rows.append(
            {
                "Step": step_label(rules, str(row["rule_id"]), str(row["step_id"])),
                "Channel": _str(row["channel"]),
                "When": _local_text(row["at"] if sent_at is None or pd.isna(sent_at) else sent_at),
                "Status": str(row["status"]),
                "Reason": _str(row["reason"]),
                "By": _str(row["requested_by"]),
                "Charge": ""
                if charge is None or pd.isna(charge)
                else f"{Decimal(str(charge)):f} {row['charge_currency']}",
            }
        )
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))


def next_step_text(step: NextStep | None, rules: RuleSet, paused: bool) -> str:
    """The line under an invoice's history: what comes next and when (Bangkok time)."""
    if paused:
        return "Reminders are paused for this invoice or its buyer."
    if step is None:
        return "No reminder is planned (paid, not chased by any rule, or every step done)."
    when = _local_text(step.due_at)
    return f"Next: {step_label(rules, step.rule_id, step.step_id)}, due {when} (Bangkok time)."


def preview_table(preview: Mapping[str, Any]) -> pd.DataFrame:
    """``courier.jobs.preview_reminders``'s SMS as rows (numbers masked), cost per SMS."""
    rows = [
        {
            "Invoice": sms["invoice_number"],
            "Step": sms["step"],
            "To": sms["to"],
            "Segments": int(sms["segments"]),
            "Cost": f"{Decimal(sms['amount']):f} {sms['currency']}",
        }
        for sms in preview.get("sms", [])
    ]
    return pd.DataFrame(rows, columns=list(PREVIEW_COLUMNS))


def preview_counts(preview: Mapping[str, Any]) -> list[str]:
    """Lines for what the next run would not send, and why."""
    lines = [f"Held: {reason} — {count}" for reason, count in sorted(preview["held"].items())]
    lines += [
        f"Skipped: {SKIP_LABELS.get(code, code)} — {count}"
        for code, count in sorted(preview["skipped"].items())
    ]
    return lines


def as_of_text(moment: datetime) -> str:
    return _local_text(pd.Timestamp(moment))
