"""The "Send All" dialog: the channel (SMS, e-mail or both, where e-mail is configured),
the SMS template, the preview by channel — recipients, skips and reasons, exact cost —
and the send, one flow run per set of channels (``courier.screens.send_all``)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from courier import actions, screens
from courier.channels import EMAIL, SMS
from courier.ledger import Ledger, LedgerBusy
from courier.messages import ON_ISSUE_PLACEHOLDERS
from dashboard.auth import Access
from dashboard.shared import (
    BUSY,
    LEDGER_WAIT_S,
    Sending,
    close_dialog,
    flow_send_sms,
    notice,
    session,
)

PLACEHOLDERS_TEXT = " ".join("{" + p + "}" for p in sorted(ON_ISSUE_PLACEHOLDERS))


def _preview(
    ledger_path: Path,
    sending: Sending,
    access: Access,
    template: str,
    channels: tuple[str, ...],
) -> screens.SendAllPreview:
    numbers: list[str] = session()["send_all_numbers"]
    request_id: str = session()["send_all_request"]
    key = (request_id, template, channels, len(numbers), hash(tuple(numbers)))
    cached = session().get("send_all_preview")
    if cached is not None and cached[0] == key:
        preview: screens.SendAllPreview = cached[1]
        return preview
    assert sending.settings is not None and sending.prices is not None
    preview = actions.preview(
        Ledger(ledger_path, lock_wait_s=LEDGER_WAIT_S),
        sending.prices,
        sending.settings,
        numbers,
        request_id,
        access.user,
        template=template or None,
        channels=channels,
    )
    session()["send_all_preview"] = (key, preview)
    return preview


def _money_text(value: Decimal) -> str:
    return f"{value:f}"


def _channel_choice(sending: Sending) -> tuple[str, ...]:
    """The channels "Send All" sends by: the person's choice where e-mail is configured,
    SMS (with the reason) where it is not."""
    if not sending.email_enabled:
        st.caption(f"By SMS only: {screens.EMAIL_NOT_CONFIGURED}")
        return (SMS,)
    choice = st.radio(
        "Send by", list(screens.CHANNEL_CHOICES), horizontal=True, key="send_all_channel"
    )
    return screens.CHANNEL_CHOICES[choice or "SMS"]


def _template_input() -> str:
    template = st.text_area(
        "Message template",
        key="send_all_template",
        placeholder="Empty: the usual text (Thai for Thai buyers, English otherwise)",
    )
    template = template or ""
    st.caption(f"Placeholders: {PLACEHOLDERS_TEXT}. Empty: the usual text.")
    if template.strip():
        check = screens.check_template(template)
        if check.error:
            st.error(check.error)
        st.caption(
            f"Template text alone: {check.encoding}, {len(template)} characters"
            + (
                f"; forcing UCS-2: {screens.char_names(check.ucs2_chars)}"
                if check.ucs2_chars
                else ""
            )
        )
        if check.ucs2_chars:
            st.markdown(
                "<div style='white-space:pre-wrap;border:1px solid #ddd;padding:.5em'>"
                + check.highlighted_html
                + "</div>",
                unsafe_allow_html=True,
            )
    return template.strip()


def _preview_metrics(preview: screens.SendAllPreview, per_channel: bool) -> None:
    shown = [("Recipients", f"{len(preview.recipients):,}")]
    if per_channel and SMS in preview.channels:
        shown.append(("SMS", f"{len(preview.sms_recipients):,}"))
    if per_channel and EMAIL in preview.channels:
        shown.append(("E-mails", f"{len(preview.email_recipients):,}"))
    shown.append(("Skipped", f"{preview.skipped_total:,}"))
    if SMS in preview.channels:
        shown.append(("Segments", f"{preview.segments:,}"))
    shown.append(("Total cost", f"{_money_text(preview.total)} {preview.currency}"))
    for col, (label, value) in zip(st.columns(len(shown)), shown, strict=True):
        col.metric(label, value)


def _sms_cost_tables(preview: screens.SendAllPreview) -> None:
    st.markdown("**Encoding and segments per message**")
    st.dataframe(
        preview.by_encoding.rename(
            columns={
                "encoding": "Encoding",
                "segments": "Segments per message",
                "messages": "Messages",
            }
        ),
        hide_index=True,
    )
    if preview.ucs2_chars:
        st.caption(
            "Characters that make messages UCS-2 (70 characters per segment instead of "
            f"160): {screens.char_names(preview.ucs2_chars[:40])}"
        )
    st.markdown("**Cost per country**")
    by_country = preview.by_country
    st.dataframe(
        pd.DataFrame(
            {
                "Country": by_country["country"],
                "Messages": by_country["messages"],
                "Segments": by_country["segments"],
                "Price per segment": by_country["unit_price"].map(_money_text),
                "Cost": by_country["amount"].map(_money_text),
                "Currency": by_country["currency"],
            }
        ),
        hide_index=True,
    )


def _channel_cost_table(preview: screens.SendAllPreview) -> None:
    by_channel = preview.by_channel()
    st.markdown("**Cost per channel**")
    st.dataframe(
        pd.DataFrame(
            {
                "Channel": by_channel["channel"],
                "Messages": by_channel["messages"],
                "Price per e-mail": by_channel["unit_price"].map(
                    lambda p: _money_text(p) if isinstance(p, Decimal) else ""
                ),
                "Cost": by_channel["amount"].map(_money_text),
                "Currency": by_channel["currency"],
            }
        ),
        hide_index=True,
    )


def _sending_label(preview: screens.SendAllPreview) -> str:
    counts = []
    if SMS in preview.channels:
        counts.append(f"{len(preview.sms_recipients):,} SMS")
    if EMAIL in preview.channels:
        counts.append(f"{len(preview.email_recipients):,} e-mail(s)")
    return f"Sending {' and '.join(counts)}…"


def _send_all_body(ledger_path: Path, sending: Sending, access: Access) -> None:
    numbers: list[str] = session()["send_all_numbers"]
    st.write(f"**{len(numbers):,}** invoices: {session().get('send_all_scope', '')}.")
    channels = _channel_choice(sending)
    template = _template_input() if SMS in channels else ""
    try:
        preview = _preview(ledger_path, sending, access, template, channels)
    except LedgerBusy:
        st.warning(BUSY)
        return
    if preview.template_error:
        st.error(preview.template_error)
    if preview.channel_error:
        st.error(preview.channel_error)
    _preview_metrics(preview, per_channel=sending.email_enabled)
    if preview.skipped or preview.email_skipped:
        st.markdown("**Skipped**")
        st.dataframe(preview.skipped_table(), hide_index=True)
    if not preview.by_encoding.empty:
        _sms_cost_tables(preview)
    if EMAIL in preview.channels:
        _channel_cost_table(preview)
    total = f"{_money_text(preview.total)} {preview.currency}"
    if preview.budget is None:
        st.caption(f"Total {total}. No run budget is set (COURIER_RUN_BUDGET).")
    elif preview.within_budget:
        st.success(f"Total {total}, within the run budget of {preview.budget} {preview.currency}.")
    else:
        st.error(
            f"Total {total} is over the run budget of {preview.budget} {preview.currency}: "
            "send fewer or raise COURIER_RUN_BUDGET."
        )
    if not access.can_send:
        st.warning(access.why_not)
    confirmed = st.button(
        "Confirm and send",
        type="primary",
        disabled=not (preview.can_send and access.can_send),
    )
    if not confirmed:
        return
    results: list[dict[str, Any]] = []
    with st.status(_sending_label(preview), expanded=True) as box:
        try:
            # One flow run per set of channels, so each invoice goes only by the channels
            # its preview counted (same request id: a second press sends nothing new).
            for group_channels, group in preview.send_groups():
                summary = flow_send_sms(
                    group, preview.request_id, access.user, preview.template, group_channels
                )
                results.append(summary.get("result", {}))
                if results[-1].get("refused"):
                    break
        except Exception as error:
            box.update(label="The send failed", state="error")
            st.error(f"The send-sms flow failed: {error}. Pressing again sends only the rest.")
            return
        session()["dialog"] = None  # before anything else: a second click finds it closed
        box.update(label="Sent", state="complete")
    result = screens.merge_send_results(results)
    kind, text = screens.describe_send(result, sending.currency, preview.channels)
    charged = Decimal(str(result.get("charged", "0")))
    text += f" Preview was {_money_text(preview.total)} {preview.currency}"
    text += " (equal)." if charged == preview.total else "."
    notice(kind, text)
    st.rerun()


#: The dialog is "Send All by SMS" where SMS is the only channel, else "Send All" (the
#: channel is chosen inside).
sms_dialog = st.dialog("Send All by SMS", width="large", on_dismiss=close_dialog)(_send_all_body)
dialog = st.dialog("Send All", width="large", on_dismiss=close_dialog)(_send_all_body)
