"""Thai amounts in words (``baht_text``), as printed under a THB invoice's grand total."""

from __future__ import annotations

from decimal import Decimal

import pytest

from courier.documents.thai_text import baht_text, thai_number_words


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        # the examples of the specification
        ("21.00", "ยี่สิบเอ็ดบาทถ้วน"),
        ("101.50", "หนึ่งร้อยเอ็ดบาทห้าสิบสตางค์"),
        ("1000000", "หนึ่งล้านบาทถ้วน"),
        ("0.25", "ยี่สิบห้าสตางค์"),
        # units, tens: สิบ not หนึ่งสิบ, ยี่สิบ not สองสิบ, เอ็ด after a higher digit only
        ("0", "ศูนย์บาทถ้วน"),
        ("0.00", "ศูนย์บาทถ้วน"),
        ("1", "หนึ่งบาทถ้วน"),
        ("2", "สองบาทถ้วน"),
        ("10", "สิบบาทถ้วน"),
        ("11", "สิบเอ็ดบาทถ้วน"),
        ("12", "สิบสองบาทถ้วน"),
        ("20", "ยี่สิบบาทถ้วน"),
        ("22", "ยี่สิบสองบาทถ้วน"),
        ("99", "เก้าสิบเก้าบาทถ้วน"),
        ("100", "หนึ่งร้อยบาทถ้วน"),
        ("101", "หนึ่งร้อยเอ็ดบาทถ้วน"),
        ("110", "หนึ่งร้อยสิบบาทถ้วน"),
        ("111", "หนึ่งร้อยสิบเอ็ดบาทถ้วน"),
        ("120", "หนึ่งร้อยยี่สิบบาทถ้วน"),
        ("201", "สองร้อยเอ็ดบาทถ้วน"),
        ("1001", "หนึ่งพันเอ็ดบาทถ้วน"),
        ("1010", "หนึ่งพันสิบบาทถ้วน"),
        ("1234", "หนึ่งพันสองร้อยสามสิบสี่บาทถ้วน"),
        ("10000", "หนึ่งหมื่นบาทถ้วน"),
        ("21021", "สองหมื่นหนึ่งพันยี่สิบเอ็ดบาทถ้วน"),
        ("100000", "หนึ่งแสนบาทถ้วน"),
        ("999999", "เก้าแสนเก้าหมื่นเก้าพันเก้าร้อยเก้าสิบเก้าบาทถ้วน"),
        # millions: groups of six digits, each followed by ล้าน
        ("1000001", "หนึ่งล้านเอ็ดบาทถ้วน"),
        ("1000010", "หนึ่งล้านสิบบาทถ้วน"),
        ("2000000", "สองล้านบาทถ้วน"),
        ("10000000", "สิบล้านบาทถ้วน"),
        ("11000000", "สิบเอ็ดล้านบาทถ้วน"),
        ("21000000", "ยี่สิบเอ็ดล้านบาทถ้วน"),
        ("101000000", "หนึ่งร้อยเอ็ดล้านบาทถ้วน"),
        (
            "1234567.89",
            "หนึ่งล้านสองแสนสามหมื่นสี่พันห้าร้อยหกสิบเจ็ดบาทแปดสิบเก้าสตางค์",
        ),
        (
            "1234567890",
            "หนึ่งพันสองร้อยสามสิบสี่ล้านห้าแสนหกหมื่นเจ็ดพันแปดร้อยเก้าสิบบาทถ้วน",
        ),
        # millions of millions
        ("1000000000000", "หนึ่งล้านล้านบาทถ้วน"),
        ("1000000000001", "หนึ่งล้านล้านเอ็ดบาทถ้วน"),
        ("2500000000000", "สองล้านห้าแสนล้านบาทถ้วน"),
        ("11000001000000", "สิบเอ็ดล้านเอ็ดล้านบาทถ้วน"),  # 11,000,001 x 1,000,000
        (
            "9999999999999.99",
            "เก้าล้านเก้าแสนเก้าหมื่นเก้าพันเก้าร้อยเก้าสิบเก้าล้าน"
            "เก้าแสนเก้าหมื่นเก้าพันเก้าร้อยเก้าสิบเก้าบาทเก้าสิบเก้าสตางค์",
        ),
        ("1E+18", "หนึ่งล้านล้านล้านบาทถ้วน"),
        ("1E+30", "หนึ่งล้านล้านล้านล้านล้านบาทถ้วน"),  # beyond 28 significant digits
        # satang
        ("0.01", "หนึ่งสตางค์"),
        ("0.10", "สิบสตางค์"),
        ("0.11", "สิบเอ็ดสตางค์"),
        ("0.21", "ยี่สิบเอ็ดสตางค์"),
        ("1.01", "หนึ่งบาทหนึ่งสตางค์"),
        ("1.1", "หนึ่งบาทสิบสตางค์"),
        ("21.21", "ยี่สิบเอ็ดบาทยี่สิบเอ็ดสตางค์"),
        ("119620.44", "หนึ่งแสนหนึ่งหมื่นเก้าพันหกร้อยยี่สิบบาทสี่สิบสี่สตางค์"),
    ],
)
def test_baht_text(amount: str, words: str) -> None:
    assert baht_text(Decimal(amount)) == words


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        ("0.005", "หนึ่งสตางค์"),  # half a satang rounds up (half away from zero)
        ("0.004", "ศูนย์บาทถ้วน"),
        ("0.994", "เก้าสิบเก้าสตางค์"),
        ("0.995", "หนึ่งบาทถ้วน"),  # rounds into the baht
        ("1.125", "หนึ่งบาทสิบสามสตางค์"),  # not banker's rounding (would be 12)
        ("1.135", "หนึ่งบาทสิบสี่สตางค์"),
        ("999999.995", "หนึ่งล้านบาทถ้วน"),
        ("-0", "ศูนย์บาทถ้วน"),
        ("-0.00", "ศูนย์บาทถ้วน"),
    ],
)
def test_baht_text_rounds_half_up_to_the_satang(amount: str, words: str) -> None:
    assert baht_text(Decimal(amount)) == words


def test_baht_text_takes_ints() -> None:
    assert baht_text(21) == "ยี่สิบเอ็ดบาทถ้วน"


@pytest.mark.parametrize("amount", ["-1", "-0.01", "-0.001", "-1000000"])
def test_baht_text_refuses_negative_amounts(amount: str) -> None:
    with pytest.raises(ValueError, match="negative"):
        baht_text(Decimal(amount))


@pytest.mark.parametrize("amount", ["NaN", "sNaN", "Infinity", "-Infinity"])
def test_baht_text_refuses_non_finite_amounts(amount: str) -> None:
    with pytest.raises(ValueError, match="finite"):
        baht_text(Decimal(amount))


@pytest.mark.parametrize("amount", [21.0, "21", True, None])
def test_baht_text_refuses_non_decimals(amount: object) -> None:
    with pytest.raises(TypeError):
        baht_text(amount)  # type: ignore[arg-type]


def test_thai_number_words() -> None:
    assert thai_number_words(0) == "ศูนย์"
    assert thai_number_words(1) == "หนึ่ง"
    assert thai_number_words(11) == "สิบเอ็ด"
    assert thai_number_words(1_000_000) == "หนึ่งล้าน"
    with pytest.raises(ValueError):
        thai_number_words(-1)
    with pytest.raises(TypeError):
        thai_number_words(True)


def test_every_amount_up_to_ten_thousand_reads_back() -> None:
    """A tiny parser of the words gives back amounts from 0 to 9,999.99 (every 37th
    satang, so every digit in every place): no digit is lost, doubled or misplaced."""
    digits = {"หนึ่ง": 1, "เอ็ด": 1, "สอง": 2, "ยี่": 2, "สาม": 3, "สี่": 4, "ห้า": 5, "หก": 6}
    digits |= {"เจ็ด": 7, "แปด": 8, "เก้า": 9}
    places = {"สิบ": 10, "ร้อย": 100, "พัน": 1000}

    def parse(words: str) -> int:
        total, pending, index = 0, 0, 0
        while index < len(words):
            for word, value in (*digits.items(), *places.items()):
                if words.startswith(word, index):
                    index += len(word)
                    if word in places:
                        total += (pending or 1) * value
                        pending = 0
                    else:
                        pending = value
                    break
            else:
                raise AssertionError(f"cannot read {words[index:]!r}")
        return total + pending

    for satang_total in range(0, 1_000_000, 37):
        baht, satang = divmod(satang_total, 100)
        words = baht_text(Decimal(satang_total) / 100)
        if baht:
            baht_words, rest = words.split("บาท")
            assert parse(baht_words) == baht
        else:
            rest = words if satang else ""
        if satang:
            assert rest.endswith("สตางค์")
            assert parse(rest.removesuffix("สตางค์")) == satang
        else:
            assert rest in ("ถ้วน", "") or words == "ศูนย์บาทถ้วน"
