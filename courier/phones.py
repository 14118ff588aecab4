"""Buyers' telephone numbers as ERPs export them -> numbers we may text (pure core).

``clean_phone`` turns one raw field into a ``PhoneResult``; ``clean_phones`` does a
whole DataFrame, parsing each distinct (raw value, region) pair only once (libphonenumber
manages roughly 47k parses per second per core, and the same buyer shows up on many
invoices). ``mask_phone`` is the only form of a number that may go to logs and screens.

Rules, in order:

* **missing** - ``None``/NaN, blank, or a placeholder such as ``-``, ``n/a``, ``none``.
* **invalid** - letters anywhere (``call office``, ``ext. 12``, vanity numbers), more than
  one number in the field (``081-234-5678, 089-876-5432``, ``081-234-5678 / 02-123-4567``:
  a field must hold exactly one number, we never guess which one the buyer meant),
  characters other than digits, ``+``, spaces, dots, dashes and parentheses, or a
  number libphonenumber does not consider valid (e.g. ``66236578901``).
* **not_mobile** - a valid number that cannot receive SMS for sure (landline, toll free,
  ...). ``MOBILE`` and ``FIXED_LINE_OR_MOBILE`` count as textable.
* **ok** - everything else.

The buyer's country is the default region, so ``081-234-5678`` is read as Thai for a
Thai buyer. A country code without ``+`` is understood for the buyer's own country
(``66812345678`` for TH, ``9665...`` for SA, ``201...`` for EG) - not for other
countries, where a mistyped local number could turn into a valid foreign one. ``00``
followed by a country code (``0066812345678``) is read as ``+66...`` whatever the region.
Unicode digits (Thai ``๐-๙``, Arabic-Indic ``٠-٩``), full-width forms and odd spaces or
dashes are normalised first.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Final, Literal

import pandas as pd
import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberType

PhoneStatus = Literal["ok", "missing", "invalid", "not_mobile"]

REASON_OK: Final = ""
REASON_MISSING: Final = "No telephone number"
REASON_INVALID: Final = "Invalid telephone number"
REASON_NOT_MOBILE: Final = "Not a mobile number"

#: Output columns of ``clean_phones``, in order.
PHONE_COLUMNS: Final = ("phone_e164", "phone_etda", "phone_type", "phone_status", "phone_reason")

#: Number types we treat as able to receive SMS.
TEXTABLE_TYPES: Final = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})

_TYPE_NAMES: Final[dict[int, str]] = {
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.UNKNOWN: "unknown",
}

#: Values ERP users type when they have no number (compared case-insensitively).
_MISSING_TOKENS: Final = frozenset(
    {"", "-", "--", "---", "—", "–", ".", "0", "n/a", "na", "n.a.", "none", "null", "nil"}
    | {"nan", "<na>", "ไม่มี"}
)

#: Separators that mean "more than one number in this field".
_SEVERAL_NUMBERS: Final = re.compile(r"[,;/|&\n\r\t]")
#: After normalisation, the only characters a single number may contain.
_ALLOWED: Final = re.compile(r"^\+?[0-9 .\-()]+$")
_DASHES: Final = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63"), "-")

_UNKNOWN_REGION: Final = "ZZ"
_MASK: Final = "•••"


@dataclass(frozen=True)
class PhoneResult:
    """One raw telephone field, judged.

    ``e164``/``etda`` are set whenever the number is valid (also for ``not_mobile``, so
    documents can still print it); ``etda`` is ETDA's ``+<country code>-<national
    significant number>`` form, e.g. ``+66-812345678``.
    """

    raw: str | None
    e164: str | None
    etda: str | None
    number_type: str
    status: PhoneStatus
    reason: str

    @property
    def textable(self) -> bool:
        return self.status == "ok"


def _normalise(text: str) -> str:
    """NFKC, every Unicode decimal digit -> ASCII, odd dashes/spaces -> plain ones."""
    text = unicodedata.normalize("NFKC", text).translate(_DASHES)
    out = []
    for ch in text:
        if ch.isdecimal() and not ("0" <= ch <= "9"):
            out.append(str(unicodedata.decimal(ch)))
        elif ch.isspace() and ch not in "\n\r\t":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out).strip()


def _result(
    raw: str | None,
    status: PhoneStatus,
    reason: str,
    number: PhoneNumber | None = None,
    number_type: str = "unknown",
) -> PhoneResult:
    if number is None:
        return PhoneResult(raw, None, None, number_type, status, reason)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    nsn = phonenumbers.national_significant_number(number)
    return PhoneResult(raw, e164, f"+{number.country_code}-{nsn}", number_type, status, reason)


def _parse_valid(text: str, region: str) -> PhoneNumber | None:
    """``phonenumbers.parse`` + validity; ``None`` when it is not a valid number."""
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def clean_phone(raw: str | None, region: str) -> PhoneResult:
    """Judge one raw telephone field; ``region`` is the buyer's country (ISO alpha-2).

    One number per field only: two numbers (``"081-234-5678, 089-876-5432"``) are
    *invalid* ("Invalid telephone number") rather than a guess at which one to text.
    Never raises for bad input; the outcome is in ``status`` and ``reason``.
    """
    text = _normalise(_raw_text(raw))
    if text.lower() in _MISSING_TOKENS:
        return _result(raw, "missing", REASON_MISSING)
    if (
        any(ch.isalpha() for ch in text)
        or _SEVERAL_NUMBERS.search(text)
        or not _ALLOWED.match(text)
    ):
        return _result(raw, "invalid", REASON_INVALID)

    region = (region or "").strip().upper() or _UNKNOWN_REGION
    digits = re.sub(r"\D", "", text)
    number: PhoneNumber | None = None
    if not text.startswith("+") and digits.startswith("00"):
        # "00" + country code: the usual international prefix, though not Thailand's
        # (001/007/008/009), so libphonenumber alone would misread "0066...".
        number = _parse_valid("+" + digits[2:], region)
    if number is None:
        number = _parse_valid(text, region)
    if number is None:
        return _result(raw, "invalid", REASON_INVALID)

    kind = phonenumbers.number_type(number)
    type_name = _TYPE_NAMES.get(kind, "unknown")
    if kind not in TEXTABLE_TYPES:
        return _result(raw, "not_mobile", REASON_NOT_MOBILE, number, type_name)
    return _result(raw, "ok", REASON_OK, number, type_name)


def _raw_text(value: Any) -> str:
    """A DataFrame cell as the text it was meant to be (NA -> "", 812345678.0 -> "812345678")."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a digits-only column read without dtype=str
    return str(value)


def clean_phones(
    df: pd.DataFrame,
    raw_col: str = "buyer_phone_raw",
    region_col: str = "buyer_country",
) -> pd.DataFrame:
    """``clean_phone`` for every row of ``df``, parsing each distinct (raw, region) once.

    Returns a DataFrame with ``df``'s index and the columns ``PHONE_COLUMNS``
    (``phone_e164``, ``phone_etda``, ``phone_type``, ``phone_status``, ``phone_reason``);
    ``phone_e164``/``phone_etda`` are NA when the number is not valid.
    Read phone columns with ``dtype=str``: a digits-only column read as numbers has
    already lost its leading zero (we still try, but "0066..." becomes "66...").
    """
    raws = [_raw_text(v) for v in df[raw_col].tolist()]
    regions = [_raw_text(v).strip().upper() for v in df[region_col].tolist()]
    keys = pd.MultiIndex.from_arrays([raws, regions])
    codes, uniques = keys.factorize()
    results = [clean_phone(raw, region) for raw, region in uniques]
    table = pd.DataFrame(
        {
            "phone_e164": [r.e164 for r in results],
            "phone_etda": [r.etda for r in results],
            "phone_type": [r.number_type for r in results],
            "phone_status": [r.status for r in results],
            "phone_reason": [r.reason for r in results],
        },
        columns=list(PHONE_COLUMNS),
    )
    out = table.take(codes)
    out.index = df.index
    return out


def mask_phone(e164_or_raw: str | None) -> str:
    """A number fit for logs and screens: country code and the last digits only.

    * ``"+66812345678"`` / ``"+66-812345678"`` -> ``"+66 ••• ••• 678"`` (country calling
      code, then a fixed mask - which hides the length too - then the last 3 digits of
      the national number; the last 2 when it has 5 to 7 digits, none below that).
    * anything else with digits (raw exports) -> ``"••• ••• 678"``: the last 3 digits
      when there are at least 8, the last 2 from 5 to 7, none below that.
    * no digits -> ``"•••"`` (raw text is never echoed: it may hold a name); blank -> ``""``.
    """
    if not isinstance(e164_or_raw, str) or not e164_or_raw.strip():
        return ""
    text = _normalise(e164_or_raw)
    if text.startswith("+"):
        try:
            number = phonenumbers.parse(text, None)
        except NumberParseException:
            number = None
        if number is not None and number.country_code:
            nsn = phonenumbers.national_significant_number(number)
            keep = 3 if len(nsn) >= 8 else 2 if len(nsn) >= 5 else 0
            return f"+{number.country_code} {_MASK} {_MASK} {nsn[-keep:] if keep else ''}".rstrip()
    digits = re.sub(r"\D", "", text)
    keep = 3 if len(digits) >= 8 else 2 if len(digits) >= 5 else 0
    if keep == 0:
        return _MASK
    return f"{_MASK} {_MASK} {digits[-keep:]}"
