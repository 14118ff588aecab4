"""courier.phones: cleaning telephone numbers as ERPs export them."""

from __future__ import annotations

import re

import pandas as pd
import phonenumbers
import pytest

import courier.phones
from courier.phones import (
    PHONE_COLUMNS,
    REASON_INVALID,
    REASON_MISSING,
    REASON_NOT_MOBILE,
    clean_phone,
    clean_phones,
    mask_phone,
)

THAI_MOBILE = "+66812345678"


@pytest.mark.parametrize(
    "raw",
    [
        "081-234-5678",
        "+66 81 234 5678",
        "66812345678",  # country code without "+"
        "0066812345678",  # "00" international prefix (not Thailand's own)
        "0812345678",
        "081.234.5678",
        "081 234 5678",
        " 081-234-5678 ",
        "+66-812345678",  # ETDA form
        "+66 (0)81 234 5678",
        "+66 081 234 5678",
        "๐๘๑-๒๓๔-๕๖๗๘",  # Thai digits
        "０８１-２３４-５６７８",  # full-width digits
        "081\u2013234\u20135678",  # en dashes
        "081\u00a0234\u00a05678",  # NBSP
    ],
)
def test_thai_mobile_formats(raw: str) -> None:
    result = clean_phone(raw, "TH")
    assert result.status == "ok", result
    assert result.reason == ""
    assert result.e164 == THAI_MOBILE
    assert result.etda == "+66-812345678"
    assert result.number_type == "mobile"
    assert result.raw == raw
    assert result.textable


def test_parentheses_format() -> None:
    result = clean_phone("(089) 123 4567", "TH")
    assert (result.status, result.e164, result.etda) == ("ok", "+66891234567", "+66-891234567")


def test_region_is_case_and_space_insensitive() -> None:
    assert clean_phone("081-234-5678", " th ").e164 == THAI_MOBILE


def test_specification_example_is_invalid() -> None:
    result = clean_phone("66236578901", "TH")
    assert result.status == "invalid"
    assert result.reason == REASON_INVALID
    assert result.e164 is None and result.etda is None
    assert not result.textable


@pytest.mark.parametrize("raw", ["02-123-4567", "+66 2 123 4567", "053-123-456", "6621234567"])
def test_thai_landline_is_not_mobile(raw: str) -> None:
    result = clean_phone(raw, "TH")
    assert result.status == "not_mobile"
    assert result.reason == REASON_NOT_MOBILE
    assert result.number_type == "fixed_line"
    assert result.e164 is not None and result.e164.startswith("+66")  # still printable
    assert result.etda is not None and result.etda.startswith("+66-")


def test_bangkok_landline_e164() -> None:
    result = clean_phone("02-123-4567", "TH")
    assert (result.e164, result.etda) == ("+6621234567", "+66-21234567")


@pytest.mark.parametrize("raw", [None, "", "   ", "-", "n/a", "N/A", "none", "NULL", "—", "ไม่มี"])
def test_blank_is_missing(raw: str | None) -> None:
    result = clean_phone(raw, "TH")
    assert result.status == "missing"
    assert result.reason == REASON_MISSING
    assert result.e164 is None and result.etda is None
    assert result.number_type == "unknown"


@pytest.mark.parametrize(
    "raw",
    [
        "081-234-5678, 089-876-5432",
        "081-234-5678 / 02-123-4567",
        "081-234-5678; 089-876-5432",
        "081-234-5678 089-876-5432",
        "0812345678/0898765432",
    ],
)
def test_two_numbers_in_one_field_are_invalid(raw: str) -> None:
    result = clean_phone(raw, "TH")
    assert result.status == "invalid"
    assert result.reason == REASON_INVALID
    assert result.e164 is None


@pytest.mark.parametrize(
    "raw",
    [
        "call office",
        "ติดต่อฝ่ายบัญชี",
        "Tel. 081-234-5678",
        "081-234-5678 ext 12",
        "1-800-FLOWERS",
        "081-234-567x",
        "اتصل بالمكتب",
        "081#234#5678",
        "66+812345678",
        "12",
    ],
)
def test_letters_and_junk_are_invalid(raw: str) -> None:
    result = clean_phone(raw, "TH")
    assert result.status == "invalid"
    assert result.reason == REASON_INVALID


@pytest.mark.parametrize("raw", ["0501234567", "+966501234567", "966501234567", "+966 50 123 4567"])
def test_saudi_mobiles(raw: str) -> None:
    result = clean_phone(raw, "SA")
    assert (result.status, result.e164, result.etda) == ("ok", "+966501234567", "+966-501234567")


def test_saudi_arabic_indic_digits() -> None:
    assert clean_phone("٠٥٠١٢٣٤٥٦٧", "SA").e164 == "+966501234567"


def test_saudi_landline() -> None:
    assert clean_phone("011 234 5678", "SA").status == "not_mobile"


@pytest.mark.parametrize(
    "raw", ["01012345678", "+201012345678", "201012345678", "+20 10 1234 5678"]
)
def test_egyptian_mobiles(raw: str) -> None:
    result = clean_phone(raw, "EG")
    assert (result.status, result.e164, result.etda) == ("ok", "+201012345678", "+20-1012345678")


def test_egyptian_landline() -> None:
    assert clean_phone("02 2345 6789", "EG").status == "not_mobile"


def test_foreign_number_needs_plus_or_00() -> None:
    # A Saudi mobile in a Thai buyer's record: fine with "+" or "00" ...
    assert clean_phone("+966501234567", "TH").e164 == "+966501234567"
    assert clean_phone("00966501234567", "TH").e164 == "+966501234567"
    # ... but a local-looking number is read in the buyer's country.
    assert clean_phone("0501234567", "TH").status == "invalid"


def test_unknown_region_accepts_only_international() -> None:
    assert clean_phone("+66812345678", "").status == "ok"
    assert clean_phone("0812345678", "").status == "invalid"


def test_numeric_cell_is_read_as_text() -> None:
    assert clean_phone(812345678, "TH").e164 == THAI_MOBILE  # type: ignore[arg-type]


# --------------------------------------------------------------------------- clean_phones


def _frame() -> pd.DataFrame:
    raws = ["081-234-5678", "02-123-4567", None, "66236578901", "081-234-5678", "0501234567"]
    regions = ["TH", "TH", "TH", "TH", "TH", "SA"]
    df = pd.DataFrame({"buyer_phone_raw": raws * 50, "buyer_country": regions * 50})
    df.index = pd.Index([f"inv-{i}" for i in range(len(df))], name="number")
    return df


@pytest.fixture
def parse_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    calls: list[tuple[str, str]] = []
    real_parse = phonenumbers.parse

    def counting_parse(number: str, region: str | None = None) -> phonenumbers.PhoneNumber:
        calls.append((number, str(region)))
        return real_parse(number, region)

    monkeypatch.setattr(courier.phones.phonenumbers, "parse", counting_parse)
    return calls


def test_clean_phones_parses_each_distinct_pair_once(parse_calls: list[tuple[str, str]]) -> None:
    df = _frame()
    out = clean_phones(df)
    # 4 distinct parseable (raw, region) pairs among 300 rows; None never reaches the parser.
    assert len(parse_calls) == 4
    assert sorted(parse_calls) == sorted(
        [("081-234-5678", "TH"), ("02-123-4567", "TH"), ("66236578901", "TH"), ("0501234567", "SA")]
    )
    assert len(out) == len(df)


def test_clean_phones_same_raw_different_region_parsed_separately(
    parse_calls: list[tuple[str, str]],
) -> None:
    df = pd.DataFrame({"buyer_phone_raw": ["0501234567"] * 10, "buyer_country": ["SA", "TH"] * 5})
    out = clean_phones(df)
    assert len(parse_calls) == 2
    assert list(out["phone_status"][:2]) == ["ok", "invalid"]


def test_clean_phones_costs_no_more_than_distinct_values(
    parse_calls: list[tuple[str, str]],
) -> None:
    # "0066..." may take two parses ("+66..." then as typed): still only once per value.
    distinct = ["0066812345678", "0019665012345", "081-234-5678"]
    for raw in distinct:
        clean_phone(raw, "TH")
    expected = len(parse_calls)
    parse_calls.clear()
    df = pd.DataFrame({"buyer_phone_raw": distinct * 40, "buyer_country": "TH"})
    clean_phones(df)
    assert len(parse_calls) == expected


def test_clean_phones_preserves_index_and_rows() -> None:
    df = _frame()
    out = clean_phones(df)
    assert list(out.columns) == list(PHONE_COLUMNS)
    assert out.index.equals(df.index)
    for number in ["inv-0", "inv-6", "inv-294"]:
        raw = df.at[number, "buyer_phone_raw"]
        expected = clean_phone(
            None if raw is None else str(raw), str(df.at[number, "buyer_country"])
        )
        row = out.loc[number]
        assert row["phone_status"] == expected.status
        assert row["phone_reason"] == expected.reason
        assert row["phone_type"] == expected.number_type
        if expected.e164 is None:
            assert pd.isna(row["phone_e164"]) and pd.isna(row["phone_etda"])
        else:
            assert (row["phone_e164"], row["phone_etda"]) == (expected.e164, expected.etda)
    assert out["phone_status"].value_counts().to_dict() == {
        "ok": 150,
        "not_mobile": 50,
        "missing": 50,
        "invalid": 50,
    }


def test_clean_phones_shuffled_index_and_nan() -> None:
    df = pd.DataFrame(
        {
            "tel": ["0812345678", float("nan"), "02-123-4567", pd.NA],
            "cc": ["TH", "TH", "th", None],
        },
        index=[30, 10, 20, 0],
    )
    out = clean_phones(df, raw_col="tel", region_col="cc")
    assert list(out.index) == [30, 10, 20, 0]
    assert list(out["phone_status"]) == ["ok", "missing", "not_mobile", "missing"]
    assert out.at[30, "phone_e164"] == THAI_MOBILE


def test_clean_phones_empty_frame() -> None:
    df = pd.DataFrame({"buyer_phone_raw": pd.Series([], dtype=object), "buyer_country": []})
    out = clean_phones(df)
    assert out.empty
    assert list(out.columns) == list(PHONE_COLUMNS)


# --------------------------------------------------------------------------- mask_phone


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("+66812345678", "+66 ••• ••• 678"),
        ("+66-812345678", "+66 ••• ••• 678"),
        ("+966501234567", "+966 ••• ••• 567"),
        ("+201012345678", "+20 ••• ••• 678"),
        ("081-234-5678", "••• ••• 678"),
        ("12345", "••• ••• 45"),
        ("1234", "•••"),
        ("call office", "•••"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_phone(value: str | None, masked: str) -> None:
    assert mask_phone(value) == masked


@pytest.mark.parametrize(
    "value",
    [
        "+66812345678",
        "+66-812345678",
        "0812345678",
        "081-234-5678",
        "66812345678",
        "0066812345678",
        "+966501234567",
        "0501234567",
        "+201012345678",
        "01012345678",
        "02-123-4567",
        "+6621234567",
        "081-234-5678, 089-876-5432",
        "66236578901",
    ],
)
def test_mask_never_reveals_the_number(value: str) -> None:
    masked = mask_phone(value)
    digits = re.sub(r"\D", "", value)
    shown = re.sub(r"\D", "", masked)
    assert digits not in shown
    # at most the country code plus 3 digits are visible
    assert len(re.sub(r"^\+\d+ ", "", masked).replace("•", "").replace(" ", "")) <= 3
    result = clean_phone(value, "TH")
    if result.e164:
        national = result.e164[len(str(phonenumbers.parse(result.e164).country_code)) + 1 :]
        assert national not in masked
