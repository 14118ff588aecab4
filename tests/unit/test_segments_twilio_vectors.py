"""SMS segment counting against vectors published by Twilio.

Each vector is checked against BOTH counters: the product's ``courier.messages.count_segments``
and the sandbox gateway's own ``sandbox.sms_gateway.count_segments`` (independent code).

Sources:

- Twilio's Message Segment Calculator (github.com/TwilioDevEd/message-segment-calculator,
  the tool twilio.com/docs links to), ``tests/index.test.js``: every body, encoding, segment
  count and ``messageSize`` (bits of payload: 7 per GSM-7 septet, 16 per UCS-2 code unit)
  below is one of its test cases, rebuilt from its literal (``"1234567890..."``) strings.
  Its ``numberOfUnicodeScalars`` pins the rebuild (``len`` of a Python ``str``).
- Twilio's "What the heck is a segment?" blog post and SMS character-limit glossary: GSM-7
  160 septets in one segment, 153 per segment once split (the User Data Header takes 6 bytes);
  UCS-2 70 code units, 67 per segment; GSM-7 extension characters take two septets.

Left out: the calculator's Malaysia case (``é`` sent as UCS-2 only because Malaysian routes
require it; with no country ``é`` is GSM-7) and its Smart Encoding replacements (an opt-in
Messaging Service feature).
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from courier.messages import count_segments as product_count_segments
from courier.messages import ucs2_forcing_chars
from sandbox.sms_gateway import count_segments as sandbox_count_segments

DIGITS = "1234567890" * 40  # the calculator's test bodies are runs of these digits


class Vector(NamedTuple):
    id: str
    body: str
    encoding: str
    segments: int
    message_size_bits: int  # the calculator's messageSize
    scalars: int  # the calculator's numberOfUnicodeScalars where it states one


CALCULATOR_VECTORS = [
    Vector("GSM-7 in one segment", DIGITS[:160], "GSM-7", 1, 1120, 160),
    Vector("GSM-7 in two segments", DIGITS[:161], "GSM-7", 2, 1127, 161),
    Vector("GSM-7 in three segments", DIGITS[:307], "GSM-7", 3, 2149, 307),
    Vector("UCS-2 message in one segment", "😜" + DIGITS[1:69], "UCS-2", 1, 1120, 69),
    Vector("UCS-2 message in two segments", "😜" + DIGITS[1:70], "UCS-2", 2, 1136, 70),
    Vector("UCS-2 message in three segments", "😜" + DIGITS[1:134], "UCS-2", 3, 2160, 134),
    Vector(
        "UCS-2 with two bytes extended characters in one segments boundary",
        "\U0001f1ee\U0001f1f9" + DIGITS[1:67],  # 🇮🇹: two regional indicators
        "UCS-2",
        1,
        1120,
        68,
    ),
    Vector(
        "UCS-2 with extended characters in two segments boundary",
        "\U0001f1ee\U0001f1f9" + DIGITS[1:68],
        "UCS-2",
        2,
        1136,
        69,
    ),
    Vector(
        "UCS-2 with four bytes extended characters in one segments boundary",
        "\U0001f3f3\ufe0f\u200d\U0001f308" + DIGITS[1:65],  # 🏳️‍🌈: flag, VS16, ZWJ, rainbow
        "UCS-2",
        1,
        1120,
        68,
    ),
    Vector(
        "UCS-2 with four bytes extended characters in two segments boundary",
        "\U0001f3f3\ufe0f\u200d\U0001f308" + DIGITS[1:66],
        "UCS-2",
        2,
        1136,
        69,
    ),
]

#: The calculator's "GSM-7 Escape Characters" cases, for each of its escape characters.
GSM7_ESCAPE_CHARS = ["|", "^", "€", "{", "}", "[", "]", "~", "\\"]
ESCAPE_VECTORS = [
    vector
    for char in GSM7_ESCAPE_CHARS
    for vector in (
        Vector(f"one segment with {char!r}", char + DIGITS[:158], "GSM-7", 1, 1120, 159),
        Vector(f"two segments with {char!r}", char + DIGITS[:159], "GSM-7", 2, 1127, 160),
    )
]

#: The calculator's "One grapheme UCS-2 characters": 70 of them fit one segment, 71 need two.
UCS2_LETTERS = ["Á", "Ú", "ú", "ç", "í", "Í", "ó", "Ó"]
LETTER_VECTORS = [
    vector
    for char in UCS2_LETTERS
    for vector in (
        Vector(f"70 x {char}", char * 70, "UCS-2", 1, 70 * 16, 70),
        Vector(f"71 x {char}", char * 71, "UCS-2", 2, 71 * 16, 71),
    )
]

#: The calculator's "Special tests" (its issue #18: GSM extension characters cost ONE unit
#: in a UCS-2 message) and "Triple accents" tests (issue #17: combining marks are units).
SPECIAL_VECTORS = [
    Vector("UCS-2 with ']' in one segment", "😀" + "]" * 68, "UCS-2", 1, 1120, 69),
    Vector("UCS-2 with ']' in two segments", "😀" + "]" * 69, "UCS-2", 2, 1136, 70),
    Vector("triple accent, one segment", "e\u0301\u0301\u0301" + "a" * 66, "UCS-2", 1, 1120, 70),
    Vector("triple accent, two segments", "e\u0301\u0301\u0301" + "a" * 67, "UCS-2", 2, 1136, 71),
]

ALL_VECTORS = CALCULATOR_VECTORS + ESCAPE_VECTORS + LETTER_VECTORS + SPECIAL_VECTORS


def units_of(vector: Vector) -> int:
    return vector.message_size_bits // (7 if vector.encoding == "GSM-7" else 16)


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=[v.id for v in ALL_VECTORS])
def test_product_counter_matches_twilio(vector):
    assert len(vector.body) == vector.scalars  # the body is the calculator's
    info = product_count_segments(vector.body)
    assert (info.encoding, info.segments) == (vector.encoding, vector.segments)
    assert info.units == units_of(vector)


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=[v.id for v in ALL_VECTORS])
def test_sandbox_counter_matches_twilio(vector):
    info = sandbox_count_segments(vector.body)
    assert (info.encoding, info.count) == (vector.encoding, vector.segments)
    assert info.units == units_of(vector)


# -- the rules as Twilio's docs state them -------------------------------------------------


@pytest.mark.parametrize(
    ("body", "encoding", "segments"),
    [
        ("a" * 160, "GSM-7", 1),  # 160 GSM-7 characters: one segment
        ("a" * 161, "GSM-7", 2),  # beyond that, 153 per segment
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # an extension character takes two septets
        ("€" * 81, "GSM-7", 2),
        ("a" * 159 + "[", "GSM-7", 2),  # 159 + 2 = 161 septets
        ("ก" * 70, "UCS-2", 1),  # one non-GSM character: UCS-2, 70 per segment
        ("ก" * 71, "UCS-2", 2),  # beyond that, 67 per segment
        ("ก" * 134, "UCS-2", 2),
        ("ก" * 135, "UCS-2", 3),
        ("a" * 69 + "😀", "UCS-2", 2),  # an emoji is two UTF-16 code units: 71
    ],
)
def test_the_documented_limits(body, encoding, segments):
    product = product_count_segments(body)
    sandbox = sandbox_count_segments(body)
    assert (product.encoding, product.segments) == (encoding, segments)
    assert (sandbox.encoding, sandbox.count) == (encoding, segments)


def test_non_gsm_characters_are_reported_as_the_calculator_does():
    # the calculator's getNonGsmCharacters() test: 'más' -> ['á']
    assert ucs2_forcing_chars("más") == ["á"]
    assert product_count_segments("más").encoding == "UCS-2"
    assert sandbox_count_segments("más").encoding == "UCS-2"
