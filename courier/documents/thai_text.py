"""Thai amounts in words, as printed under the total of a Thai tax invoice.

``baht_text(Decimal("101.50"))`` -> ``"หนึ่งร้อยเอ็ดบาทห้าสิบสตางค์"``. The amount is rounded to
the satang (half away from zero, as every amount in Courier); whole baht end in ``ถ้วน``
(``"ยี่สิบเอ็ดบาทถ้วน"``) and an amount under one baht is read in satang only
(``"ยี่สิบห้าสตางค์"``). Negative amounts, NaN, infinities and floats are refused.

Reading rules (those of the Royal Institute, and of Excel's ``BAHTTEXT``):

* digits are read in groups of six, each group followed by ``ล้าน`` (million) as often as
  it is a power of a million: 10^12 is ``หนึ่งล้านล้าน``;
* in the tens: 1 is ``สิบ`` (not ``หนึ่งสิบ``), 2 is ``ยี่สิบ``;
* a 1 in the units after any higher digit is ``เอ็ด``: 11 ``สิบเอ็ด``, 101 ``หนึ่งร้อยเอ็ด``,
  1,000,001 ``หนึ่งล้านเอ็ด``, but 1 alone is ``หนึ่ง``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Final

__all__ = ["baht_text", "thai_number_words"]

_DIGITS: Final = ("ศูนย์", "หนึ่ง", "สอง", "สาม", "สี่", "ห้า", "หก", "เจ็ด", "แปด", "เก้า")
#: Place names inside a group of six digits, from the units up.
_PLACES: Final = ("", "สิบ", "ร้อย", "พัน", "หมื่น", "แสน")
_MILLION: Final = 1_000_000
_SATANG: Final = Decimal("0.01")


def thai_number_words(number: int) -> str:
    """A non-negative integer in Thai words: ``21`` -> ``"ยี่สิบเอ็ด"``, ``0`` -> ``"ศูนย์"``."""
    if isinstance(number, bool) or not isinstance(number, int):
        raise TypeError(f"expected an int, got {type(number).__name__}")
    if number < 0:
        raise ValueError(f"negative number: {number}")
    if number == 0:
        return _DIGITS[0]
    return _words(number, after_higher_digit=False)


def _words(number: int, *, after_higher_digit: bool) -> str:
    """``number`` > 0 in words; ``after_higher_digit``: a non-zero digit precedes it."""
    millions, rest = divmod(number, _MILLION)
    text = ""
    if millions:
        text = _words(millions, after_higher_digit=after_higher_digit) + "ล้าน"
        after_higher_digit = True
    if rest:
        text += _group(rest, after_higher_digit=after_higher_digit)
    return text


def _group(number: int, *, after_higher_digit: bool) -> str:
    """0 < ``number`` < 1,000,000 in words."""
    parts: list[str] = []
    digits = f"{number:06d}"
    for index, char in enumerate(digits):
        digit = int(char)
        place = 5 - index
        if digit == 0:
            continue
        if place == 1 and digit == 1:
            parts.append("สิบ")
        elif place == 1 and digit == 2:
            parts.append("ยี่สิบ")
        elif place == 0 and digit == 1 and (after_higher_digit or number > 1):
            parts.append("เอ็ด")
        else:
            parts.append(_DIGITS[digit] + _PLACES[place])
    return "".join(parts)


def baht_text(amount: Decimal | int) -> str:
    """``amount`` in baht and satang, in Thai words (see the module doc).

    Raises ``TypeError`` for anything but ``Decimal``/``int`` (a float is never exact
    money) and ``ValueError`` for negative or non-finite amounts.
    """
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
        raise TypeError(f"expected a Decimal amount, got {type(amount).__name__} {amount!r}")
    value = Decimal(amount)
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    if value < 0:
        raise ValueError(f"negative amount: {value}")
    with localcontext() as context:
        # Exact for any size: the default 28 significant digits would round 10^30 baht.
        context.prec = max(context.prec, value.adjusted() + 8)
        satang_total = int(value.quantize(_SATANG, rounding=ROUND_HALF_UP).scaleb(2))
    baht, satang = divmod(satang_total, 100)
    if baht == 0 and satang == 0:
        return "ศูนย์บาทถ้วน"
    if baht == 0:
        return _words(satang, after_higher_digit=False) + "สตางค์"
    text = _words(baht, after_higher_digit=False) + "บาท"
    if satang == 0:
        return text + "ถ้วน"
    return text + _words(satang, after_higher_digit=False) + "สตางค์"
