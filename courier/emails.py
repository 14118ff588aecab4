"""Buyers' e-mail addresses: checked, normalised and masked (pure).

An address is checked by ``email-validator`` for its syntax only — no DNS look-up at run
time (a nightly run must not depend on a resolver, and a domain's mail servers say nothing
about whether this buyer reads that mailbox; bounces tell that, later). One address per
field: two addresses in one field are *invalid* rather than a guess at which one to use,
as for phone numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from email_validator import EmailNotValidError, validate_email

EmailStatus = Literal["ok", "invalid", "missing"]

REASON_MISSING: Final = "No e-mail address"
REASON_INVALID: Final = "Invalid e-mail address"
#: Separators that mean a field holds more than one address.
_SEVERAL: Final = re.compile(r"[,;\s]")
MASK: Final = "•••"


@dataclass(frozen=True)
class EmailCheck:
    status: EmailStatus
    address: str | None  # normalised (domain lower-cased, IDNA kept readable); None unless ok
    reason: str  # "" when ok: what a person reads otherwise

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def clean_email(raw: str | None) -> EmailCheck:
    """Judge one raw e-mail field. Never raises for bad input."""
    text = (raw or "").strip()
    if not text:
        return EmailCheck("missing", None, REASON_MISSING)
    if _SEVERAL.search(text):
        return EmailCheck("invalid", None, f"{REASON_INVALID} (one address per buyer)")
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        return EmailCheck("invalid", None, REASON_INVALID)
    return EmailCheck("ok", checked.normalized, "")


def mask_email(address: str | None) -> str:
    """An address fit for logs and screens: the first letter of the mailbox and the
    domain's last label only — ``somchai@siamtrading.co.th`` -> ``s•••@•••.th``.

    Raw text that is not an address is never echoed (it may hold a name): ``•••``;
    blank -> ``""``.
    """
    text = (address or "").strip()
    if not text:
        return ""
    local, at, domain = text.rpartition("@")
    if not at or not local or "." not in domain:
        return MASK
    return f"{local[0]}{MASK}@{MASK}.{domain.rsplit('.', 1)[1]}"
