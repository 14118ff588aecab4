"""What a selected row allows: the edit dialog's check of a typed number, and whether
the invoice can be (re)sent by e-mail, with the reason when it cannot."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import pandas as pd

from courier.email_planning import REASON_BOUNCED
from courier.emails import REASON_INVALID
from courier.emails import REASON_MISSING as REASON_NO_EMAIL
from courier.phones import REASON_MISSING, PhoneResult, clean_phone, mask_phone

#: Why no row action can e-mail on this page (the relay is configured by COURIER_SMTP_HOST).
EMAIL_NOT_CONFIGURED: Final = "E-mail is not configured here (COURIER_SMTP_HOST)."

# --------------------------------------------------------------------------- edit phone


@dataclass(frozen=True)
class PhoneCheck:
    """A typed number judged by the pipeline's rules; ``message`` says what is wrong."""

    result: PhoneResult
    ok: bool
    message: str
    masked: str


def check_phone(raw: str, region: str) -> PhoneCheck:
    """Is ``raw`` one number that can receive SMS (``clean_phone``, buyer's ``region``)?"""
    result = clean_phone(raw, region)
    message = "" if result.textable else result.reason or REASON_MISSING
    return PhoneCheck(result, result.textable, message, mask_phone(result.e164 or raw))


# --------------------------------------------------------------------------- e-mail


@dataclass(frozen=True)
class EmailAction:
    """The row's e-mail button: its label, and ``why_not`` when it is disabled."""

    label: str  # "Send by e-mail", or "Resend by e-mail" once one went
    allowed: bool
    why_not: str = ""


Row = Mapping[str, Any] | pd.Series


def _value(row: Row, name: str) -> str:
    value = row.get(name)
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value)


def email_action(row: Row | None, email_configured: bool) -> EmailAction:
    """May the selected invoice (an ``invoice_status`` row) be e-mailed now? Not without
    a relay, nor to an address that is missing, invalid or has bounced (the sender would
    refuse it; the reason is the one the table shows)."""
    if row is None:
        return EmailAction("Send by e-mail", False, "Select one row to e-mail its buyer.")
    sends = _value(row, "email_sends")
    label = "Resend by e-mail" if sends not in ("", "0") else "Send by e-mail"
    if not email_configured:
        return EmailAction(label, False, EMAIL_NOT_CONFIGURED)
    address = _value(row, "email_status") or "missing"  # a snapshot from before e-mail
    if address == "missing":
        return EmailAction(label, False, _value(row, "email_reason") or REASON_NO_EMAIL)
    if address != "ok":
        return EmailAction(label, False, _value(row, "email_reason") or REASON_INVALID)
    if _value(row, "email_send_status") == "bounced":
        # The view's "Bounced (5.1.1)" keeps its code: "E-mail address bounced (5.1.1)".
        code = _value(row, "email_send_reason").removeprefix("Bounced")
        return EmailAction(label, False, REASON_BOUNCED + code)
    return EmailAction(label, True)
