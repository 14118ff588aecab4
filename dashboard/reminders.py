"""The "Reminders" tab, and the reminder panel of one invoice on the "Send to Buyer" tab.

The tab shows the rules (each step's SMS size), what the next run would send and what it
would cost (``courier.jobs.preview_reminders``: read only, nothing recorded), the pauses in
force, and two actions through Prefect flows that record who asked: pause / resume
chasing an invoice or a buyer, and "send now" one reminder step (its own outbox key, so the
scheduled run does not repeat it). Layout only: the tables come from
``courier.reminder_screens``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from courier import jobs, reminder_screens
from courier.ledger import Ledger, LedgerBusy, now_utc
from courier.reminders.planning import next_steps, purposes_in_outbox
from courier.reminders.rules import RuleSet
from courier.reminders.rules_file import RuleFileError, load_rules
from courier.settings import Settings
from courier.snapshot import snapshot_version
from dashboard.auth import Access
from dashboard.shared import BUSY, LEDGER_WAIT_S, ONE_ACTION_AT_A_TIME, Sending

#: The preview is computed again at most this often (and whenever a new snapshot lands).
PREVIEW_EVERY_S = 60


def _rules_path(sending: Sending) -> Path:
    if sending.settings is not None:
        return sending.settings.reminder_rules_path
    default = Settings.model_fields["reminder_rules_path"].default
    return Path(os.environ.get("COURIER_REMINDER_RULES_PATH", str(default)))


def load_rule_set(sending: Sending) -> tuple[RuleSet | None, str]:
    """The rules, or why they cannot be used (every problem, named by rule and field)."""
    path = _rules_path(sending)
    try:
        return load_rules(path), ""
    except RuleFileError as error:
        return None, str(error)


def _notice() -> None:
    notice = st.session_state.pop("reminders_notice", None)
    if notice is not None:
        kind, text = notice
        {"success": st.success, "warning": st.warning, "error": st.error}.get(kind, st.info)(text)


@st.cache_resource(show_spinner=False, max_entries=4, ttl=PREVIEW_EVERY_S * 2)
def _cached_preview(
    ledger_path: str, rules_key: tuple[str, float], version: tuple[int, ...], bucket: int
) -> dict[str, Any]:
    from courier.messages import load_price_table
    from courier.settings import load_settings

    settings = load_settings()
    return jobs.preview_reminders(
        Ledger(Path(ledger_path), lock_wait_s=LEDGER_WAIT_S),
        load_rules(Path(rules_key[0])),
        load_price_table(settings.pricing_path),
        settings,
    )


def _preview(ledger_path: Path, rules_path: Path) -> dict[str, Any]:
    mtime = rules_path.stat().st_mtime if rules_path.exists() else 0.0
    bucket = int(time.time() // PREVIEW_EVERY_S)
    return _cached_preview(
        str(ledger_path), (str(rules_path), mtime), snapshot_version(ledger_path), bucket
    )


def _run_flow(flow: Any, **parameters: Any) -> dict[str, Any] | None:
    """Run one action flow (one at a time per dashboard process); None if it failed."""
    with ONE_ACTION_AT_A_TIME:
        try:
            result: dict[str, Any] = flow(**parameters)
        except Exception as error:
            st.error(f"The {flow.name} flow failed: {error}")
            return None
    return result


def render(ledger_path: Path, access: Access, sending: Sending) -> None:
    _notice()
    rules, problem = load_rule_set(sending)
    st.subheader("Rules")
    path = _rules_path(sending)
    if rules is None:
        st.error(f"The rules file cannot be used, so no reminders are sent:\n\n{problem}")
        return
    if not path.exists():
        st.info(f"No rules file at {path}: no reminders are sent.")
        return
    st.caption(f"From {path}; edit the file to change them (`courier reminders rules` checks it).")
    st.dataframe(reminder_screens.rules_table(rules), hide_index=True, width="stretch")

    st.subheader("Next run")
    if not sending.ready:
        st.warning(sending.problem)
    else:
        try:
            preview = _preview(ledger_path, _rules_path(sending))
        except LedgerBusy:
            st.warning(BUSY)
            preview = None
        if preview is not None:
            _show_preview(preview, sending.prices.currency if sending.prices else "")

    may_act = access.can_send and sending.ready
    why = access.why_not if not access.can_send else sending.problem
    _pauses(ledger_path, access, may_act, why)
    _send_now(rules, access, may_act, why)


def _show_preview(preview: dict[str, Any], currency: str) -> None:
    table = reminder_screens.preview_table(preview)
    cols = st.columns(3)
    cols[0].metric("Reminders the next run sends", f"{len(table):,}")
    cols[1].metric("Quoted cost", f"{preview['quoted']} {currency}".strip())
    cols[2].metric("As of", reminder_screens.as_of_text(pd.Timestamp(preview["as_of"])))
    if preview["refused"]:
        st.error(preview["refused"])
    if len(table):
        st.dataframe(table, hide_index=True, width="stretch", key="reminder_preview_table")
    for line in reminder_screens.preview_counts(preview):
        st.caption(line)


def _pauses(ledger_path: Path, access: Access, may_act: bool, why: str) -> None:
    from flows.actions import pause_reminders, resume_reminders

    st.subheader("Stop chasing")
    with st.form("pause_reminders_form", clear_on_submit=True):
        target = st.text_input("Invoice number", key="pause_invoice")
        scope = st.radio(
            "Pause",
            ["This invoice", "Every invoice of its buyer"],
            horizontal=True,
            key="pause_scope",
        )
        reason = st.text_input("Why (kept with the pause)", key="pause_reason")
        pressed = st.form_submit_button("Pause reminders", disabled=not may_act, help=why or None)
    if pressed:
        if not target.strip() or not reason.strip():
            st.error("Give the invoice number and why.")
        else:
            summary = _run_flow(
                pause_reminders,
                scope="invoice" if scope == "This invoice" else "buyer",
                target=target.strip(),
                reason=reason,
                paused_by=access.user,
            )
            if summary is not None:
                result = summary["result"]
                if result.get("refused"):
                    st.session_state["reminders_notice"] = ("error", result["refused"])
                else:
                    st.session_state["reminders_notice"] = (
                        "success",
                        f"Reminders paused for the {result['scope']} of {result['target']}.",
                    )
                st.rerun()
    try:
        pauses = Ledger(ledger_path, lock_wait_s=LEDGER_WAIT_S).pauses_in_force()
    except LedgerBusy:
        st.warning(BUSY)
        return
    if pauses.empty:
        st.caption("No reminders are paused.")
        return
    shown = pd.DataFrame(
        {
            "Paused": pauses["scope"] + ": " + pauses["target_label"].fillna(pauses["target"]),
            "Why": pauses["reason"],
            "By": pauses["paused_by"],
            "When": pauses["paused_at"].map(reminder_screens.as_of_text),
        }
    )
    st.dataframe(shown, hide_index=True, width="stretch", key="reminder_pauses_table")
    labels = dict(
        zip(shown["Paused"], zip(pauses["scope"], pauses["target"], strict=True), strict=True)
    )
    with st.form("resume_reminders_form", clear_on_submit=True):
        chosen = st.selectbox("Resume", list(labels), key="resume_choice")
        reason = st.text_input("Why", key="resume_reason")
        pressed = st.form_submit_button("Resume reminders", disabled=not may_act, help=why or None)
    if pressed and chosen is not None:
        scope, target = labels[chosen]
        summary = _run_flow(
            resume_reminders, scope=scope, target=target, reason=reason, resumed_by=access.user
        )
        if summary is not None:
            ended = summary["result"].get("resumed", 0)
            st.session_state["reminders_notice"] = ("success", f"{ended} pause(s) ended.")
            st.rerun()


def _send_now(rules: RuleSet, access: Access, may_act: bool, why: str) -> None:
    from flows.reminders import send_reminder_now

    st.subheader("Send a reminder now")
    steps = {
        reminder_screens.step_label(rules, rule.id, step.id): (rule.id, step.id)
        for rule in rules.rules
        for step in rule.steps
    }
    with st.form("send_reminder_now_form"):
        number = st.text_input("Invoice number", key="send_now_invoice")
        label = st.selectbox("Step", list(steps), key="send_now_step")
        st.caption(
            "Charged like any SMS. The scheduled run will not send this step (or an "
            "earlier one) again; STOP, payment, pauses and sending hours still apply."
        )
        pressed = st.form_submit_button("Send now", disabled=not may_act, help=why or None)
    if not pressed or label is None:
        return
    if not number.strip():
        st.error("Give the invoice number.")
        return
    rule_id, step_id = steps[label]
    summary = _run_flow(
        send_reminder_now,
        invoice_number=number.strip(),
        rule_id=rule_id,
        step_id=step_id,
        by=access.user,
    )
    if summary is None:
        return
    result = summary["result"]
    if result.get("accepted"):
        notice = ("success", f"Reminder sent for {number.strip()}, charged {result['charged']}.")
    elif result.get("refused"):
        notice = ("error", f"Nothing was sent: {result['refused']}")
    elif result.get("held"):
        notice = ("warning", "Not sent: " + "; ".join(sorted(set(result["held"].values()))))
    elif result.get("skipped_already_in_outbox"):
        notice = ("info", "This step was already sent for this invoice: not sent again.")
    else:
        reasons = [k for k in result if k.startswith("skipped_") or k in ("failed", "retry")]
        notice = ("warning", "Not sent: " + ", ".join(reasons or ["see the run's summary"]))
    st.session_state["reminders_notice"] = notice
    st.rerun()


def invoice_panel(ledger_path: Path, invoice_number: str, sending: Sending) -> None:
    """Under the table when one invoice is selected: its reminder history (step, channel,
    when, status, charge) and the next reminder due."""
    rules, problem = load_rule_set(sending)
    with st.expander(f"Reminders for {invoice_number}", expanded=True):
        if rules is None:
            st.error(problem)
            return
        try:
            ledger = Ledger(ledger_path, lock_wait_s=LEDGER_WAIT_S)
            history = ledger.reminder_history(invoice_number)
            mine = ledger.reminder_facts([invoice_number])
            keys = ledger.message_keys([invoice_number])
        except LedgerBusy:
            st.warning(BUSY)
            return
        upcoming = next_steps(mine, purposes_in_outbox(keys), rules, now_utc())
        paused = bool(mine["paused"].any()) if len(mine) else False
        if history.empty:
            st.caption("No reminder sent or skipped yet.")
        else:
            st.dataframe(
                reminder_screens.history_table(history, rules),
                hide_index=True,
                width="stretch",
                key=f"reminder_history_{invoice_number}",
            )
        st.caption(reminder_screens.next_step_text(upcoming.get(invoice_number), rules, paused))
