"""The "Send to Buyer" tab: the invoice table, its filters, row actions and "Send All".

Layout only: what a row says, which rows a filter keeps and what "Send All" will send and
cost come from ``courier.screens``; writes go through the Prefect flows of
``flows/actions.py`` (``edit-phone``, ``send-sms``), which record every action.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
import threading
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import streamlit as st

from courier import actions, screens
from courier.ledger import Ledger, LedgerBusy
from courier.messages import ON_ISSUE_PLACEHOLDERS, PriceTable, load_price_table
from courier.settings import Settings, load_settings
from dashboard.auth import Access

#: Largest document the viewer fetches.
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
BUSY = "A run is writing the ledger right now; try again in a moment."
#: How long a press of the page waits for a run's write to the ledger before saying BUSY.
LEDGER_WAIT_S = 5.0
PLACEHOLDERS_TEXT = " ".join("{" + p + "}" for p in sorted(ON_ISSUE_PLACEHOLDERS))
#: One action flow at a time in this dashboard process. A second press while the first
#: press's flow runs starts a new script run in a new thread (Streamlit's fast reruns) while
#: the first thread is still inside its flow, and two people may press at once; the flows
#: share the process's PDF render pool and ledger. Queued, the second press finds the
#: first one's work done (the same request id sends nothing new).
ONE_ACTION_AT_A_TIME = threading.Lock()


# --------------------------------------------------------------------------- set-up


@dataclass(frozen=True)
class Sending:
    """What sending needs (the full settings and the price table), or why it cannot."""

    settings: Settings | None
    prices: PriceTable | None
    problem: str = ""

    @property
    def ready(self) -> bool:
        return self.settings is not None and self.prices is not None


def sending_setup() -> Sending:
    try:
        settings = load_settings()
        prices = load_price_table(settings.pricing_path)
    except Exception as error:  # settings or pricing file unusable: the page still reads
        return Sending(None, None, f"Sending is not configured here: {error}")
    return Sending(settings, prices)


def _state() -> Any:
    return st.session_state


def _new_request_id() -> str:
    return uuid.uuid4().hex


def _close_dialog() -> None:
    _state()["dialog"] = None


def _notice(kind: str, text: str) -> None:
    _state()["notice"] = (kind, text)


def _show_notice() -> None:
    notice = _state().pop("notice", None)
    if notice is None:
        return
    kind, text = notice
    {"success": st.success, "warning": st.warning, "error": st.error}.get(kind, st.info)(text)


# --------------------------------------------------------------------------- filters


def current_filters(options: screens.FilterOptions) -> screens.Filters:
    """The filters as last set. The sidebar's widgets keep their values in the session
    (under their keys), so the table can be drawn from them *before* the sidebar is: the
    page then shows the table first, and loads the date picker and the pick lists after
    (a new visitor's first render, ~0.3 s sooner at 100k invoices)."""
    state = st.session_state
    chosen = state.get("filter_issued", (options.first_day, options.last_day))
    days = list(chosen) if isinstance(chosen, list | tuple) else [chosen]
    days = [d for d in days if isinstance(d, date)]
    return screens.Filters(
        issued_from=days[0] if days else None,
        issued_to=days[1] if len(days) > 1 else None,
        sellers=tuple(state.get("filter_seller", ())),
        sms_statuses=tuple(state.get("filter_sms_status", ())),
        reasons=tuple(state.get("filter_reason", ())),
        search=state.get("filter_search", "") or "",
    )


def sidebar_filters(options: screens.FilterOptions) -> None:
    """Draw the sidebar's filters (on every complete run, whichever tab is open, so they
    keep their values); :func:`current_filters` reads what they were set to."""
    with st.sidebar:
        st.header("Filters")
        if options.first_day is not None and options.last_day is not None:
            st.date_input(
                "Issued between",
                value=(options.first_day, options.last_day),
                key="filter_issued",
            )
        st.multiselect("Seller", options.sellers, key="filter_seller")
        st.multiselect(
            "SMS status",
            options.sms_statuses,
            format_func=lambda s: screens.SMS_STATUS_LABELS.get(s, s),
            key="filter_sms_status",
        )
        st.multiselect("Reason", options.reasons, key="filter_reason")
        st.text_input("Search", key="filter_search", placeholder="Invoice number or buyer")


# --------------------------------------------------------------------------- flows


def _flow_edit_phone(invoice_number: str, new_raw: str, edited_by: str) -> dict[str, Any]:
    from flows.actions import edit_phone  # Prefect loads only when an action runs

    with ONE_ACTION_AT_A_TIME:
        result: dict[str, Any] = edit_phone(
            invoice_number=invoice_number, new_raw=new_raw, edited_by=edited_by
        )
    return result


def _flow_send_sms(
    numbers: list[str], request_id: str, requested_by: str, template: str | None
) -> dict[str, Any]:
    from flows.actions import send_sms

    with ONE_ACTION_AT_A_TIME:
        result: dict[str, Any] = send_sms(
            numbers=numbers, request_id=request_id, requested_by=requested_by, template=template
        )
    return result


def _describe_send(summary: dict[str, Any], currency: str) -> tuple[str, str]:
    """(notice kind, text) for a finished send-sms run."""
    result = summary.get("result", {})
    if result.get("refused"):
        return "error", f"Nothing was sent: {result['refused']}"
    accepted = int(result.get("accepted", 0))
    charged = result.get("charged", "0")
    parts = [f"{accepted} SMS sent, charged {charged} {currency}."]
    repeated = int(result.get("already_requested", 0))
    if repeated:
        parts.append(f"{repeated} already sent by this request (sent once).")
    for key, label in (("failed", "failed"), ("unknown", "undecided"), ("retry", "to retry")):
        if result.get(key):
            parts.append(f"{result[key]} {label}.")
    held = result.get("held") or {}
    if held:
        reasons = sorted(set(held.values()))
        parts.append(f"{len(held)} held back ({'; '.join(reasons)}).")
    not_sendable = result.get("not_sendable") or []
    if not_sendable:
        parts.append(
            f"{len(not_sendable)} not sendable (no mobile number or no stored document): "
            + ", ".join(not_sendable[:10])
            + ("…" if len(not_sendable) > 10 else "")
        )
    kind = "success" if accepted and not (result.get("failed") or not_sendable) else "warning"
    if not accepted and repeated:
        kind = "info"
    return kind, " ".join(parts)


# --------------------------------------------------------------------------- documents


@st.cache_data(ttl=600, show_spinner=False, max_entries=32)
def _fetch_document(url: str) -> bytes:
    """The stored document, fetched by the server (the buyer's link)."""
    with httpx.stream("GET", url, timeout=10.0, follow_redirects=False) as response:
        response.raise_for_status()
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > MAX_DOCUMENT_BYTES:
                raise ValueError("document larger than the viewer allows")
            chunks.append(chunk)
    return b"".join(chunks)


def _viewer() -> None:
    viewer = _state().get("viewer")
    if not viewer:
        return
    number, kind, url = viewer["invoice"], viewer["kind"], viewer["url"]
    label = kind.upper()
    st.subheader(f"{label} of {number}")
    try:
        content = _fetch_document(url)
    except (httpx.HTTPError, ValueError) as error:
        st.error(f"Could not open the {label}: {error}")
        st.button("Close document", key="close_viewer", on_click=_state().pop, args=("viewer",))
        return
    if kind == "pdf":
        st.download_button(
            "Download PDF",
            content,
            file_name=f"{number}.pdf",
            mime="application/pdf",
            on_click="ignore",  # the page stays as it is (no rerun for a download)
        )
        digest = hashlib.sha256(content).hexdigest()[:16]
        path = Path(tempfile.gettempdir()) / "courier-dashboard" / f"{digest}.pdf"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        st.iframe(path, height=820, alt=f"Invoice {number} (PDF)")
    else:
        st.download_button(
            "Download XML",
            content,
            file_name=f"{number}.xml",
            mime="application/xml",
            on_click="ignore",  # the page stays as it is (no rerun for a download)
        )
        st.code(content.decode("utf-8", errors="replace"), language="xml")
    st.button("Close document", key="close_viewer", on_click=_state().pop, args=("viewer",))


# --------------------------------------------------------------------------- dialogs


@st.dialog("Edit telephone number", on_dismiss=_close_dialog)
def _edit_phone_dialog(access: Access) -> None:
    target = _state().get("edit_target") or {}
    number = target.get("invoice", "")
    st.write(f"Invoice **{number}** — {target.get('buyer', '')}")
    region = target.get("country", "")
    raw = st.text_input(
        "Telephone number",
        value=target.get("raw", ""),
        key=f"edit_phone_value_{number}",
        live=True,
    )
    st.caption("One mobile number, as the buyer gave it (081-234-5678, +66 81 234 5678).")
    check = screens.check_phone(raw or "", region)
    if check.ok:
        st.caption(f"Mobile number — texted as {check.result.e164}")
    else:
        st.error(check.message)
    if st.button("Update", type="primary", disabled=not check.ok):
        with st.status("Updating the telephone number…", expanded=True) as box:
            try:
                summary = _flow_edit_phone(number, raw or "", access.user)
            except Exception as error:
                box.update(label="The update failed", state="error")
                st.error(f"The edit-phone flow failed: {error}")
                return
            box.update(label="Updated", state="complete")
        result = summary.get("result", {})
        if not result.get("updated"):
            st.error(result.get("reason") or "The number was not changed.")
            return
        _state()["dialog"] = None
        _notice(
            "success",
            f"Telephone number of {number} updated: {result.get('phone_masked', '')}. "
            "The SMS can be sent now.",
        )
        st.rerun()


def _preview(
    ledger_path: Path, sending: Sending, access: Access, template: str
) -> screens.SendAllPreview:
    numbers: list[str] = _state()["send_all_numbers"]
    request_id: str = _state()["send_all_request"]
    key = (request_id, template, len(numbers), hash(tuple(numbers)))
    cached = _state().get("send_all_preview")
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
    )
    _state()["send_all_preview"] = (key, preview)
    return preview


def _money_text(value: Decimal) -> str:
    return f"{value:f}"


@st.dialog("Send All by SMS", width="large", on_dismiss=_close_dialog)
def _send_all_dialog(ledger_path: Path, sending: Sending, access: Access) -> None:
    numbers: list[str] = _state()["send_all_numbers"]
    st.write(f"**{len(numbers):,}** invoices: {_state().get('send_all_scope', '')}.")
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
    try:
        preview = _preview(ledger_path, sending, access, template.strip())
    except LedgerBusy:
        st.warning(BUSY)
        return
    if preview.template_error:
        st.error(preview.template_error)
    cols = st.columns(4)
    cols[0].metric("Recipients", f"{len(preview.recipients):,}")
    cols[1].metric("Skipped", f"{sum(preview.skipped_counts.values()):,}")
    cols[2].metric("Segments", f"{preview.segments:,}")
    cols[3].metric("Total cost", f"{_money_text(preview.total)} {preview.currency}")
    if preview.skipped:
        st.markdown("**Skipped**")
        st.dataframe(
            pd.DataFrame(
                {
                    "Reason": list(preview.skipped_counts),
                    "Invoices": list(preview.skipped_counts.values()),
                }
            ),
            hide_index=True,
        )
    if not preview.by_encoding.empty:
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
    with st.status(f"Sending {len(preview.recipients):,} SMS…", expanded=True) as box:
        try:
            summary = _flow_send_sms(
                preview.recipients, preview.request_id, access.user, preview.template
            )
        except Exception as error:
            box.update(label="The send failed", state="error")
            st.error(f"The send-sms flow failed: {error}. Pressing again sends only the rest.")
            return
        _state()["dialog"] = None  # before anything else: a second click finds it closed
        box.update(label="Sent", state="complete")
    kind, text = _describe_send(summary, preview.currency)
    charged = Decimal(str(summary.get("result", {}).get("charged", "0")))
    text += f" Preview was {_money_text(preview.total)} {preview.currency}"
    text += " (equal)." if charged == preview.total else "."
    _notice(kind, text)
    st.rerun()


# --------------------------------------------------------------------------- the tab


def _metrics(frame: pd.DataFrame) -> None:
    sent = int((frame["sms_status"] == "sent").sum())
    currencies = frame["charge_currency"].dropna().unique()
    currency = str(currencies[0]) if len(currencies) == 1 else "USD"
    total = math.fsum(frame["total_charges"].fillna(0).astype(float))  # display only
    cols = st.columns(4)
    cols[0].metric("Invoices", f"{len(frame):,}")
    cols[1].metric("SMS sent", f"{sent:,}")
    cols[2].metric("Not sent", f"{len(frame) - sent:,}")
    cols[3].metric(f"Charges ({currency})", f"{total:,.4f}")


def _has(row: pd.Series | None, column: str) -> bool:
    return row is not None and isinstance(row.get(column), str) and bool(row.get(column))


def _table_key(shown: pd.DataFrame) -> str:
    """A key that changes with the set of rows shown, so a selection never points at other
    invoices after the filters change (it survives a row's cells changing)."""
    digest = int(pd.util.hash_pandas_object(shown["invoice_number"], index=False).sum())
    return f"send_table_{digest & 0xFFFFFFFF:08x}"


def render(
    status: pd.DataFrame,
    filters: screens.Filters,
    ledger_path: Path,
    access: Access,
    sending: Sending,
) -> str | None:
    """Draw the tab; returns the invoice number when exactly one row is selected."""
    state = _state()
    _show_notice()
    if not sending.ready:
        st.warning(sending.problem)
    filtered = screens.apply_filters(status, filters)
    _metrics(filtered)

    shown = filtered.head(screens.MAX_TABLE_ROWS).reset_index(drop=True)
    table = screens.present_table(shown)
    event = st.dataframe(
        table,
        key=_table_key(shown),
        on_select="rerun",
        selection_mode="multi-row",
        hide_index=True,
        width="stretch",
        column_config={
            # Widths of the long-text columns given: measuring their 1,000 cells costs the
            # browser a tenth of a second on a first visit.
            "Seller": st.column_config.TextColumn("Seller", width=150),
            "Buyer": st.column_config.TextColumn("Buyer", width=150),
            "SMS": st.column_config.TextColumn("SMS", width=140),
            "Charges": st.column_config.NumberColumn("Charges", format="%.4f"),
            "Sends": st.column_config.NumberColumn("Sends", format="%d"),
        },
    )
    st.caption(
        screens.showing_note(len(table), len(filtered))
        + " Phone numbers are masked; select rows to act on them."
    )
    rows = list(event.selection.rows) if event is not None else []
    picked = shown.iloc[[r for r in rows if 0 <= r < len(shown)]]
    numbers = picked["invoice_number"].astype(str).tolist()
    one = picked.iloc[0] if len(picked) == 1 else None

    may_act = access.can_send and sending.ready
    why = access.why_not if not access.can_send else sending.problem
    request = state.setdefault("sms_request", {"id": _new_request_id(), "done": False})
    cols = st.columns([1, 1, 1, 1, 2])
    edit = cols[0].button(
        "Edit phone",
        disabled=not (may_act and one is not None),
        help=why or "Select one row to change its buyer's number.",
    )
    send = cols[1].button(
        "Send SMS",
        disabled=not (may_act and numbers),
        help=why or "A new, charged SMS with a fresh link to each selected buyer.",
    )
    view_pdf = cols[2].button("View PDF", disabled=not _has(one, "pdf_url"))
    view_xml = cols[3].button(
        "View XML",
        disabled=not _has(one, "xml_url"),
        help="Sellers outside Thailand have no e-Tax XML yet." if one is not None else None,
    )
    send_all = cols[4].button(
        "Send All by SMS",
        type="primary",
        disabled=not may_act or filtered.empty,
        help=why or "The checked rows, or every row matching the filters when none is checked.",
    )
    if numbers:
        st.caption(
            f"{len(numbers)} selected: {', '.join(numbers[:5])}{'…' if len(numbers) > 5 else ''}"
        )

    if send:
        with st.status(f"Sending SMS for {len(numbers)} invoice(s)…", expanded=True) as box:
            try:
                summary = _flow_send_sms(numbers, request["id"], access.user, None)
            except Exception as error:
                box.update(label="The send failed", state="error")
                st.error(f"The send-sms flow failed: {error}. Pressing again sends only the rest.")
                summary = None
            if summary is not None:
                request["done"] = True  # first thing after the flow: a queued click reuses the id
                box.update(label="Sent", state="complete")
        if summary is not None:
            currency = sending.prices.currency if sending.prices else ""
            _notice(*_describe_send(summary, currency))
            st.rerun()
    elif request["done"]:
        state["sms_request"] = {"id": _new_request_id(), "done": False}

    if edit and one is not None:
        try:
            phone = actions.current_phone(
                Ledger(ledger_path, lock_wait_s=LEDGER_WAIT_S), str(one["invoice_number"])
            )
        except LedgerBusy:
            st.warning(BUSY)
            return None
        state["edit_target"] = {
            "invoice": str(one["invoice_number"]),
            "buyer": str(one["buyer_name"]),
            "raw": phone[0] if phone else "",
            "country": phone[1] if phone else str(one["buyer_country"]),
        }
        state["dialog"] = "edit_phone"
    if send_all:
        chosen = numbers or filtered["invoice_number"].astype(str).tolist()
        state["send_all_numbers"] = chosen
        state["send_all_scope"] = (
            "the checked rows" if numbers else "every invoice matching the filters"
        )
        state["send_all_request"] = _new_request_id()
        state.pop("send_all_preview", None)
        state["dialog"] = "send_all"
    if (view_pdf or view_xml) and one is not None:
        kind = "pdf" if view_pdf else "xml"
        state["viewer"] = {
            "invoice": str(one["invoice_number"]),
            "kind": kind,
            "url": str(one[f"{kind}_url"]),
        }

    _viewer()
    dialog = state.get("dialog")
    if dialog == "edit_phone":
        _edit_phone_dialog(access)
    elif dialog == "send_all" and sending.ready:
        _send_all_dialog(ledger_path, sending, access)
    return str(one["invoice_number"]) if one is not None else None
