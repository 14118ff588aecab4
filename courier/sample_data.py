"""Seeded, deterministic sample invoices that look like a real night's ERP export.

``generate_invoices`` returns the same invoices for the same arguments, in any process
(only ``random.Random(seed)`` decides); ``write_jsonl`` writes them as canonical records
(``courier.invoice_io``), so the file bytes are reproducible too.

Four sellers: two Thai (Bangkok, Chiang Mai) who issue most invoices, one Saudi (Riyadh)
and one Egyptian (Cairo). Buyers are mostly Thai companies and people with Thai-script
names and real TISI address codes; Saudi and Egyptian buyers (Arabic-script names) buy
mainly from the Saudi and Egyptian sellers. Buyer phones are written the many ways
exports write them - including the broken ones ``courier.phones`` must catch. Every
format in ``PHONE_FORMATS`` appears at least once when ``count >= len(FORCED_DRAFTS)``.
All names, tax ids and telephone numbers are fictional.

Payments: about 10% of invoices are ``partial`` at issue (30-70% paid) and 5% ``paid`` at
issue; ``generate_payments`` adds what buyers pay later, as events an ERP would record
(``write_payments_jsonl`` writes them for the sandbox invoice API). Payment amounts and
events come from their own ``random.Random`` per invoice, seeded from ``(seed, number)``,
so the invoices' other fields are exactly what the main stream alone makes.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Final

from courier.domain import (
    CENT,
    VAT_RATE_BY_COUNTRY,
    Address,
    Invoice,
    InvoiceLine,
    Party,
    round_money,
)
from courier.invoice_io import invoice_to_dict

BANGKOK: Final = timezone(timedelta(hours=7))
RIYADH: Final = timezone(timedelta(hours=3))
CAIRO: Final = timezone(timedelta(hours=2))  # Egypt's winter time (no DST in November)

#: The default ``start``: a nightly run at 02:00 Bangkok time.
DEFAULT_START: Final = datetime(2026, 11, 21, 2, 0, tzinfo=BANGKOK)
DEFAULT_COUNT: Final = 500
DEFAULT_SEED: Final = 20261121
#: Invoices are issued during the ``ISSUE_WINDOW`` before ``start``.
ISSUE_WINDOW: Final = timedelta(days=4)
PAYMENT_TERMS: Final = timedelta(days=30)

CURRENCY_BY_COUNTRY: Final = {"TH": "THB", "SA": "SAR", "EG": "EGP"}
TZ_BY_COUNTRY: Final = {"TH": BANGKOK, "SA": RIYADH, "EG": CAIRO}

#: The example from the specification: looks Thai, is not a valid number.
INVALID_EXAMPLE_PHONE: Final = "66236578901"


# --------------------------------------------------------------------------- tax ids


def thai_tax_id(first12: str) -> str:
    """Append the Thai mod-11 check digit to 12 digits (tax ids and national ids)."""
    if len(first12) != 12 or not first12.isdigit():
        raise ValueError("need exactly 12 digits")
    total = sum(int(d) * (13 - i) for i, d in enumerate(first12))
    return first12 + str((11 - total % 11) % 10)


def is_valid_thai_tax_id(value: str) -> bool:
    return len(value) == 13 and value.isdigit() and thai_tax_id(value[:12]) == value


def _thai_juristic_id(rng: random.Random, province_code: str, kind: str) -> str:
    """0 + registration office (province) + kind (5 company, 3 partnership, 7 public)
    + Buddhist-era year (3 digits) + running number (5) + check digit."""
    year = rng.randint(535, 568)  # B.E. 2535-2568
    return thai_tax_id(f"0{province_code}{kind}{year}{rng.randrange(100000):05d}")


def _thai_national_id(rng: random.Random) -> str:
    return thai_tax_id(f"{rng.choice('1113358')}{rng.randrange(10**11):011d}")


def _saudi_vat_number(rng: random.Random) -> str:
    return f"3{rng.randrange(10**12):012d}03"  # 15 digits, starts and ends with 3


def _egyptian_tax_number(rng: random.Random) -> str:
    return f"{rng.randint(100, 799)}{rng.randrange(10**6):06d}"  # 9 digits


# --------------------------------------------------------------------------- places


@dataclass(frozen=True)
class ThaiPlace:
    """A real TISI subdistrict with its district, province and postcode."""

    province: str
    province_code: str
    district: str
    district_code: str
    subdistrict: str
    subdistrict_code: str
    postcode: str
    roads: tuple[str, ...]

    def address(self, line1: str) -> Address:
        bangkok = self.province_code == "10"
        return Address(
            line1=line1,
            line2=("แขวง" if bangkok else "ตำบล") + self.subdistrict,
            city=("เขต" if bangkok else "อำเภอ") + self.district,
            province=self.province,
            postcode=self.postcode,
            country="TH",
            province_code=self.province_code,
            district_code=self.district_code,
            subdistrict_code=self.subdistrict_code,
        )


BKK = "กรุงเทพมหานคร"
SATHON: Final = ThaiPlace(
    BKK, "10", "สาทร", "1028", "ทุ่งมหาเมฆ", "102803", "10120", ("ถนนสาทรใต้", "ถนนนางลิ้นจี่")
)
SI_PHUM: Final = ThaiPlace(
    "เชียงใหม่", "50", "เมืองเชียงใหม่", "5001", "ศรีภูมิ", "500101", "50200",
    ("ถนนมณีนพรัตน์", "ถนนราชวิถี", "ถนนพระปกเกล้า"),
)  # fmt: skip
THAI_PLACES: Final = (
    SATHON,
    ThaiPlace(BKK, "10", "บางรัก", "1004", "สีลม", "100402", "10500", ("ถนนสีลม", "ถนนสุรวงศ์")),
    ThaiPlace(BKK, "10", "ปทุมวัน", "1007", "ลุมพินี", "100704", "10330", ("ถนนวิทยุ", "ถนนเพลินจิต")),
    ThaiPlace(BKK, "10", "จตุจักร", "1030", "จอมพล", "103004", "10900", ("ถนนพหลโยธิน", "ถนนลาดพร้าว")),
    ThaiPlace(BKK, "10", "วัฒนา", "1039", "คลองเตยเหนือ", "103901", "10110", ("ถนนสุขุมวิท",)),
    ThaiPlace(BKK, "10", "ห้วยขวาง", "1017", "ห้วยขวาง", "101701", "10310", ("ถนนรัชดาภิเษก",)),
    SI_PHUM,
    ThaiPlace(
        "เชียงใหม่", "50", "เมืองเชียงใหม่", "5001", "สุเทพ", "500108", "50200",
        ("ถนนนิมมานเหมินท์", "ถนนห้วยแก้ว"),
    ),
    ThaiPlace("นนทบุรี", "12", "เมืองนนทบุรี", "1201", "สวนใหญ่", "120101", "11000", ("ถนนประชาราษฎร์",)),
    ThaiPlace("ชลบุรี", "20", "เมืองชลบุรี", "2001", "บางปลาสร้อย", "200101", "20000", ("ถนนวชิรปราการ",)),
    ThaiPlace("ขอนแก่น", "40", "เมืองขอนแก่น", "4001", "ในเมือง", "400101", "40000", ("ถนนมิตรภาพ",)),
    ThaiPlace("ภูเก็ต", "83", "เมืองภูเก็ต", "8301", "ตลาดใหญ่", "830101", "83000", ("ถนนถลาง",)),
    ThaiPlace("สงขลา", "90", "หาดใหญ่", "9011", "หาดใหญ่", "901101", "90110", ("ถนนเพชรเกษม",)),
)  # fmt: skip
#: Where Thai buyers are (Bangkok-heavy, like the economy).
THAI_PLACE_WEIGHTS: Final = (10, 12, 10, 10, 10, 8, 8, 6, 8, 6, 4, 4, 4)

#: (city, province/region, postcode, districts) for Arabic-script addresses.
SAUDI_CITIES: Final = (
    ("الرياض", "منطقة الرياض", "12211", ("العليا", "الملز", "النخيل", "السليمانية")),
    ("جدة", "منطقة مكة المكرمة", "23431", ("الروضة", "الحمراء", "الشاطئ")),
    ("الدمام", "المنطقة الشرقية", "32241", ("الفيصلية", "الشاطئ الغربي")),
)
SAUDI_STREETS: Final = ("طريق الملك فهد", "شارع التحلية", "طريق الأمير سلطان", "شارع الأمير محمد")
EGYPTIAN_CITIES: Final = (
    ("القاهرة", "محافظة القاهرة", "11511", ("وسط البلد", "مدينة نصر", "مصر الجديدة", "المعادي")),
    ("الجيزة", "محافظة الجيزة", "12611", ("الدقي", "المهندسين", "الهرم")),
    ("الإسكندرية", "محافظة الإسكندرية", "21500", ("سموحة", "سيدي جابر")),
)
EGYPTIAN_STREETS: Final = (
    "شارع طلعت حرب",
    "شارع التحرير",
    "شارع عباس العقاد",
    "شارع جامعة الدول العربية",
)


# --------------------------------------------------------------------------- sellers


@dataclass(frozen=True)
class Product:
    product_id: str
    description: str
    unit_code: str
    price_range: tuple[int, int]  # whole currency units
    quantity_range: tuple[int, int]
    quantity_step: str = "1"  # "1" whole units, "0.5" halves, "0.01" weighed/measured


@dataclass(frozen=True)
class Seller:
    prefix: str  # invoice number prefix
    party: Party
    first_number: int  # running number before the first generated invoice
    catalogue: tuple[Product, ...]


SELLERS: Final = (
    Seller(
        "TH1",
        Party(
            name="บริษัท สยามคลาวด์ ซอฟต์แวร์ จำกัด",
            address=SATHON.address("เลขที่ 199/45 อาคารสาทรธานี ชั้น 18 ถนนสาทรใต้"),
            tax_id=thai_tax_id("010556104217"),
            email="billing@siamcloud.example",
        ),
        1200,
        (
            Product("SRV-101", "ค่าบริการดูแลระบบรายเดือน", "MON", (3500, 25000), (1, 3)),
            Product("SRV-102", "ค่าที่ปรึกษาระบบบัญชี", "HUR", (1200, 3500), (1, 40), "0.5"),
            Product("LIC-201", "ค่าลิขสิทธิ์ซอฟต์แวร์บัญชี (ต่อผู้ใช้/ปี)", "EA", (450, 1800), (1, 50)),
            Product("HW-301", "เครื่องพิมพ์ใบเสร็จแบบความร้อน", "EA", (2900, 6500), (1, 5)),
            Product("HW-302", "กระดาษความร้อน 80 มม. (กล่อง 50 ม้วน)", "BX", (350, 890), (1, 20)),
            Product("TRN-401", "ค่าฝึกอบรมการใช้งานระบบ", "DAY", (8000, 20000), (1, 3)),
            Product("SHP-901", "ค่าจัดส่ง", "EA", (60, 450), (1, 1)),
        ),
    ),
    Seller(
        "TH2",
        Party(
            name="บริษัท ล้านนา คราฟท์ แอนด์ คอฟฟี่ จำกัด",
            address=SI_PHUM.address("เลขที่ 72 ถนนมณีนพรัตน์"),
            tax_id=thai_tax_id("050556300318"),
            email="account@lannacraft.example",
        ),
        340,
        (
            Product("CF-110", "เมล็ดกาแฟอาราบิก้า คั่วกลาง", "KGM", (480, 950), (1, 25), "0.01"),
            Product("CF-120", "กาแฟดริปแบบซอง (กล่อง 10 ซอง)", "BX", (120, 260), (1, 100)),
            Product("TX-210", "ผ้าฝ้ายทอมือ", "MTR", (180, 650), (1, 60), "0.5"),
            Product("CR-310", "ร่มกระดาษสาบ่อสร้าง", "EA", (250, 1200), (1, 30)),
            Product("CR-320", "เครื่องเขินลายล้านนา", "EA", (350, 2800), (1, 12)),
            Product("EV-410", "ค่าบริการจัดเลี้ยงขันโตก (ต่อท่าน)", "C62", (450, 1200), (5, 120)),
            Product("SHP-901", "ค่าจัดส่ง", "EA", (60, 450), (1, 1)),
        ),
    ),
    Seller(
        "SA1",
        Party(
            name="شركة نجد للحلول الرقمية المحدودة",
            address=Address(
                line1="7421 طريق الملك فهد، حي العليا",
                city="الرياض",
                province="منطقة الرياض",
                postcode="12211",
                country="SA",
            ),
            tax_id="310457892600003",
            email="billing@najd-digital.example",
        ),
        75,
        (
            Product("SA-CLD", "استضافة سحابية - اشتراك شهري", "MON", (300, 2500), (1, 12)),
            Product("SA-LIC", "رخصة برنامج المحاسبة (مستخدم/سنة)", "EA", (150, 900), (1, 40)),
            Product("SA-SUP", "دعم فني", "HUR", (120, 400), (1, 40), "0.5"),
            Product("SA-PRN", "طابعة فواتير حرارية", "EA", (450, 1200), (1, 5)),
            Product("SA-PAP", "ورق حراري 80 مم (كرتون)", "BX", (60, 180), (1, 30)),
            Product("SA-TRN", "تدريب المستخدمين", "DAY", (1500, 4500), (1, 3)),
        ),
    ),
    Seller(
        "EG1",
        Party(
            name="شركة وادي النيل للبرمجيات ش.م.م",
            address=Address(
                line1="26 شارع طلعت حرب، وسط البلد",
                city="القاهرة",
                province="محافظة القاهرة",
                postcode="11511",
                country="EG",
            ),
            tax_id="528914307",
            email="billing@nile-valley-soft.example",
        ),
        58,
        (
            Product("EG-INV", "اشتراك برنامج إدارة المخزون", "MON", (900, 5000), (1, 12)),
            Product("EG-TRN", "تدريب الموظفين", "DAY", (2500, 9000), (1, 3)),
            Product("EG-A4", "ورق طباعة A4 (رزمة)", "RM", (180, 450), (1, 50)),
            Product("EG-MNT", "صيانة أجهزة", "HUR", (250, 800), (1, 24), "0.5"),
            Product("EG-POS", "جهاز نقاط بيع", "EA", (6500, 18000), (1, 4)),
            Product("EG-SHP", "مصاريف شحن", "EA", (50, 300), (1, 1)),
        ),
    ),
)
SELLER_WEIGHTS: Final = (45, 30, 13, 12)
#: Buyer country weights by seller country.
BUYER_COUNTRY_WEIGHTS: Final = {
    "TH": (("TH", 96), ("SA", 2), ("EG", 2)),
    "SA": (("SA", 85), ("EG", 10), ("TH", 5)),
    "EG": (("EG", 85), ("SA", 10), ("TH", 5)),
}


# --------------------------------------------------------------------------- phones

TH_MOBILE_PREFIXES: Final = ("61", "62", "63", "64", "65", "80", "81", "82", "83", "84", "85",
                             "86", "87", "88", "89", "90", "91", "92", "93", "94", "95", "96",
                             "97", "98", "99")  # fmt: skip
SA_MOBILE_PREFIXES: Final = ("50", "53", "54", "55", "56", "58", "59")
EG_MOBILE_PREFIXES: Final = ("10", "11", "12", "15")

#: Phone formats by buyer country with their weights (percent-ish). Names are stable:
#: tests and fixtures refer to them.
PHONE_FORMATS: Final[dict[str, tuple[tuple[str, int], ...]]] = {
    "TH": (
        ("th_dashed", 50),  # 081-234-5678
        ("th_plain", 7),  # 0812345678
        ("th_intl_spaced", 8),  # +66 81 234 5678
        ("th_cc_no_plus", 6),  # 66812345678
        ("th_00", 4),  # 0066812345678
        ("th_parens", 5),  # (089) 123 4567
        ("th_dots", 2),  # 081.234.5678
        ("th_landline", 6),  # 02-123-4567 / 053-123-456
        ("blank", 5),  # "", "-", "n/a"
        ("two_numbers", 2),  # 081-234-5678, 089-876-5432
        ("letters", 2),  # call office
        ("invalid_example", 1),  # 66236578901
    ),
    "SA": (
        ("sa_local", 45),  # 0501234567
        ("sa_intl", 30),  # +966501234567
        ("sa_spaced", 10),  # +966 50 123 4567
        ("sa_landline", 5),  # 011 234 5678
        ("blank", 5),
        ("letters", 3),
        ("two_numbers", 2),
    ),
    "EG": (
        ("eg_local", 45),  # 01012345678
        ("eg_intl", 30),  # +201012345678
        ("eg_spaced", 10),  # +20 10 1234 5678
        ("eg_landline", 5),  # 02 2345 6789
        ("blank", 5),
        ("letters", 3),
        ("two_numbers", 2),
    ),
}
#: Formats whose numbers must be valid mobiles (``courier.phones`` status "ok").
MOBILE_FORMATS: Final = frozenset(
    {"th_dashed", "th_plain", "th_intl_spaced", "th_cc_no_plus", "th_00", "th_parens",
     "th_dots", "sa_local", "sa_intl", "sa_spaced", "eg_local", "eg_intl", "eg_spaced"}
)  # fmt: skip


def _digits(rng: random.Random, n: int) -> str:
    return f"{rng.randrange(10**n):0{n}d}"


def _th_mobile(rng: random.Random) -> str:
    """A Thai mobile national significant number (9 digits)."""
    return rng.choice(TH_MOBILE_PREFIXES) + _digits(rng, 7)


def _th_dashed(nsn: str) -> str:
    return f"0{nsn[:2]}-{nsn[2:5]}-{nsn[5:]}"


def _th_landline(rng: random.Random) -> str:
    if rng.random() < 0.75:
        return f"02-{rng.randint(100, 999)}-{_digits(rng, 4)}"  # Bangkok
    return f"053-{rng.randint(100, 999)}-{_digits(rng, 3)}"  # Chiang Mai


def _sa_mobile(rng: random.Random) -> str:
    return rng.choice(SA_MOBILE_PREFIXES) + _digits(rng, 7)


def _eg_mobile(rng: random.Random) -> str:
    return rng.choice(EG_MOBILE_PREFIXES) + _digits(rng, 8)


def make_phone(rng: random.Random, fmt: str) -> str:
    """A fictional number written in export format ``fmt`` (see ``PHONE_FORMATS``)."""
    if fmt.startswith("th_") and fmt != "th_landline":
        n = _th_mobile(rng)
        return {
            "th_dashed": _th_dashed(n),
            "th_plain": f"0{n}",
            "th_intl_spaced": f"+66 {n[:2]} {n[2:5]} {n[5:]}",
            "th_cc_no_plus": f"66{n}",
            "th_00": f"0066{n}",
            "th_parens": f"(0{n[:2]}) {n[2:5]} {n[5:]}",
            "th_dots": f"0{n[:2]}.{n[2:5]}.{n[5:]}",
        }[fmt]
    if fmt == "th_landline":
        return _th_landline(rng)
    if fmt.startswith("sa_"):
        if fmt == "sa_landline":
            return f"011 {rng.randint(200, 999)} {_digits(rng, 4)}"
        n = _sa_mobile(rng)
        return {
            "sa_local": f"0{n}",
            "sa_intl": f"+966{n}",
            "sa_spaced": f"+966 {n[:2]} {n[2:5]} {n[5:]}",
        }[fmt]
    if fmt.startswith("eg_"):
        if fmt == "eg_landline":
            return f"02 {rng.randint(2000, 9999)} {_digits(rng, 4)}"
        n = _eg_mobile(rng)
        return {
            "eg_local": f"0{n}",
            "eg_intl": f"+20{n}",
            "eg_spaced": f"+20 {n[:2]} {n[2:6]} {n[6:]}",
        }[fmt]
    if fmt == "blank":
        return rng.choice(("", "", "", "-", "n/a", "N/A", " "))
    if fmt == "two_numbers":
        first = _th_dashed(_th_mobile(rng))
        if rng.random() < 0.5:
            return f"{first}, {_th_dashed(_th_mobile(rng))}"
        return f"{first} / {_th_landline(rng)}"
    if fmt == "letters":
        return rng.choice(("call office", "ติดต่อฝ่ายบัญชี", "see email", "اتصل بالمكتب"))
    if fmt == "invalid_example":
        return INVALID_EXAMPLE_PHONE
    raise ValueError(f"unknown phone format {fmt!r}")


def _country_phone(rng: random.Random, country: str, fmt: str) -> str:
    """Like ``make_phone`` but "two_numbers" in the buyer's own country style."""
    if fmt == "two_numbers" and country == "SA":
        return f"0{_sa_mobile(rng)} / 0{_sa_mobile(rng)}"
    if fmt == "two_numbers" and country == "EG":
        return f"0{_eg_mobile(rng)}, 0{_eg_mobile(rng)}"
    return make_phone(rng, fmt)


# --------------------------------------------------------------------------- buyers

THAI_FIRST_NAMES: Final = ("สมชาย", "สมหญิง", "วิชัย", "สุภาพร", "ธนพล", "ณัฐวุฒิ", "กมลวรรณ",
                           "ประเสริฐ", "อรุณี", "พิมพ์ชนก", "ศิริพร", "อนุชา", "จิราพร",
                           "ชัยวัฒน์", "นภัสสร", "ปิยะพงษ์", "วรรณา", "สุรชัย", "กิตติพงษ์",
                           "ปวีณา", "ธีรวัฒน์", "อัญชลี", "เกศินี", "ภานุวัฒน์")  # fmt: skip
THAI_LAST_NAMES: Final = ("ใจดี", "ศรีสุข", "วงศ์สวัสดิ์", "ทองคำ", "แสงอรุณ", "บุญมา",
                          "รัตนพันธ์", "เพชรรัตน์", "สุขสมบูรณ์", "จันทร์เพ็ญ", "ศักดิ์สิทธิ์",
                          "พงษ์ไพบูลย์", "สายทอง", "มีสุข", "อินทรวงศ์", "ชัยมงคล", "นาคประเสริฐ",
                          "ธนากร", "เรืองศรี", "กาญจนวงศ์")  # fmt: skip
THAI_NAME_STEMS: Final = ("สยาม", "ไทย", "รุ่งเรือง", "เจริญ", "ศรีสยาม", "มั่นคง", "อุดมสุข",
                          "ทรัพย์ทวี", "ก้าวหน้า", "ล้านนา", "อันดามัน", "ทองไทย", "เอเชีย",
                          "บูรพา", "สุวรรณภูมิ", "รัตนโกสินทร์", "ชัยพฤกษ์", "เพชรเกษม",
                          "แสงทอง", "ธนาทรัพย์", "นครไทย", "ศิริมงคล", "พรหมมินทร์",
                          "วัฒนากิจ")  # fmt: skip
THAI_NAME_TRADES: Final = (" เทรดดิ้ง", " ฟู้ดส์", "การช่าง", " ค้าวัสดุ", " อินเตอร์เนชั่นแนล",
                           " โลจิสติกส์", " เทคโนโลยี", " คอนสตรัคชั่น", "พาณิชย์",
                           " เมดิคอล", " ซัพพลาย", " เอ็นจิเนียริ่ง", " ออโตพาร์ท",
                           " การเกษตร", " พร็อพเพอร์ตี้", "ค้าไม้")  # fmt: skip
#: Arabic-script name parts (given name, family name; company kind, name, trade).
ARABIC_NAMES: Final = {
    "SA": (
        ("محمد", "عبدالله", "فهد", "نورة", "سارة", "خالد", "ريم", "سلطان"),
        ("العتيبي", "القحطاني", "الدوسري", "الشمري", "الحربي", "الزهراني", "الغامدي", "المطيري"),
        ("شركة", "مؤسسة"),
        (
            "الخليج",
            "الفجر",
            "دار الريان",
            "رؤية المستقبل",
            "السحاب الأزرق",
            "واحة النخيل",
            "نجمة الشرق",
        ),
        ("للتوريدات", "التجارية", "للمقاولات", "للتقنية", "للاتصالات", "للتجارة"),
    ),
    "EG": (
        ("أحمد", "مصطفى", "منى", "ياسمين", "عمرو", "هبة", "محمود", "نادية"),
        ("حسن", "عبد الرحمن", "إبراهيم", "محمود", "السيد", "عبد الله", "فؤاد", "منصور"),
        ("شركة", "مكتب"),
        ("الدلتا", "النور", "الإسكندرية", "مصر الجديدة", "الفيروز", "الصعيد", "النيل الأزرق"),
        ("للتجارة والتوزيع", "للاستشارات", "للأغذية", "للتقنية", "للمقاولات", "للاستيراد"),
    ),
}
#: Legal text that trips naive XML/CSV/HTML code: ampersands and quotes.
TRICKY_BUYER_NAMES: Final = (
    "บริษัท ดี & ดี เทรดดิ้ง จำกัด",
    'ร้าน "ป้าแดง" ข้าวมันไก่',
    "O'Brien & Sons (Thailand) Co., Ltd.",
)


def _thai_line1(rng: random.Random, place: ThaiPlace) -> str:
    house = str(rng.randint(1, 999))
    if rng.random() < 0.5:
        house += f"/{rng.randint(1, 99)}"
    soi = f" ซอย {rng.randint(1, 39)}" if rng.random() < 0.35 else ""
    return f"เลขที่ {house}{soi} {rng.choice(place.roads)}"


def _unique(rng: random.Random, used: set[str], make: Callable[[], str]) -> str:
    """A name not in ``used`` (tries a few times, then numbers the last try)."""
    name = make()
    for _ in range(20):
        if name not in used:
            break
        name = make()
    else:
        name = f"{name} ({sum(1 for u in used if u.startswith(name)) + 1})"
    used.add(name)
    return name


def _thai_buyer(rng: random.Random, used: set[str], name: str | None = None) -> Party:
    place = rng.choices(THAI_PLACES, weights=THAI_PLACE_WEIGHTS)[0]
    address = place.address(_thai_line1(rng, place))
    if name is None and rng.random() < 0.35:
        person = _unique(
            rng,
            used,
            lambda: f"คุณ{rng.choice(THAI_FIRST_NAMES)} {rng.choice(THAI_LAST_NAMES)}",
        )
        if rng.random() < 0.5:
            return Party(person, address, _thai_national_id(rng), "NIDN")
        return Party(person, address, "", "OTHR")
    kind = "5"
    if name is None:
        roll = rng.random()
        kind = "3" if roll < 0.15 else "7" if roll < 0.2 else "5"
        form = {"3": "ห้างหุ้นส่วนจำกัด {}", "7": "บริษัท {} จำกัด (มหาชน)", "5": "บริษัท {} จำกัด"}
        name = _unique(
            rng,
            used,
            lambda: form[kind].format(rng.choice(THAI_NAME_STEMS) + rng.choice(THAI_NAME_TRADES)),
        )
    used.add(name)
    email = f"ap{rng.randint(100, 999)}@example.co.th" if rng.random() < 0.5 else ""
    branch = "00000" if rng.random() < 0.9 else f"{rng.randint(1, 12):05d}"
    return Party(
        name,
        address,
        _thai_juristic_id(rng, place.province_code, kind),
        "TXID",
        branch,
        email,
    )


def _arabic_buyer(
    rng: random.Random, used: set[str], country: str, name: str | None = None
) -> Party:
    saudi = country == "SA"
    city, province, postcode, districts = rng.choice(SAUDI_CITIES if saudi else EGYPTIAN_CITIES)
    street = rng.choice(SAUDI_STREETS if saudi else EGYPTIAN_STREETS)
    number = rng.randint(1, 9999) if saudi else rng.randint(1, 120)
    address = Address(
        line1=f"{number} {street}، {'حي ' if saudi else ''}{rng.choice(districts)}",
        city=city,
        province=province,
        postcode=postcode,
        country=country,
    )
    given, family, kinds, stems, trades = ARABIC_NAMES[country]
    if name is None and rng.random() < 0.4:
        person = _unique(rng, used, lambda: f"{rng.choice(given)} {rng.choice(family)}")
        return Party(person, address, "", "OTHR")
    if name is None:
        name = _unique(
            rng,
            used,
            lambda: f"{rng.choice(kinds)} {rng.choice(stems)} {rng.choice(trades)}",
        )
    used.add(name)
    tax_id = _saudi_vat_number(rng) if saudi else _egyptian_tax_number(rng)
    email = f"finance{rng.randint(10, 99)}@example.{'sa' if saudi else 'com.eg'}"
    return Party(name, address, tax_id, "TXID", email=email if rng.random() < 0.5 else "")


def _buyer(rng: random.Random, used: set[str], country: str, name: str | None = None) -> Party:
    if country == "TH":
        return _thai_buyer(rng, used, name)
    return _arabic_buyer(rng, used, country, name)


def _phone_format(rng: random.Random, country: str) -> str:
    formats = PHONE_FORMATS[country]
    return rng.choices([f for f, _ in formats], weights=[w for _, w in formats])[0]


# --------------------------------------------------------------------------- invoices


@dataclass(frozen=True)
class _Draft:
    seller: Seller
    buyer: Party
    phone: str
    issued_at: datetime
    lines: tuple[InvoiceLine, ...]
    payment_status: str


#: (seller prefix, buyer country, phone format, buyer name or None) made first, so every
#: phone format and tricky name is present even in a modest sample.
FORCED_DRAFTS: Final[tuple[tuple[str, str, str, str | None], ...]] = (
    *((("TH2", "TH1")[i % 2], "TH", fmt, None) for i, (fmt, _) in enumerate(PHONE_FORMATS["TH"])),
    *(("SA1", "SA", fmt, None) for fmt, _ in PHONE_FORMATS["SA"]),
    *(("EG1", "EG", fmt, None) for fmt, _ in PHONE_FORMATS["EG"]),
    *(("TH1", "TH", "th_dashed", name) for name in TRICKY_BUYER_NAMES),
)

#: How often an invoice goes to one of the regular (repeat) buyers.
REPEAT_BUYER_SHARE: Final = 0.08


def _quantity(rng: random.Random, product: Product) -> Decimal:
    low, high = product.quantity_range
    step = Decimal(product.quantity_step)
    steps = rng.randint(int(low / step), int(high / step))
    return (step * steps).quantize(CENT)


def _unit_price(rng: random.Random, product: Product) -> Decimal:
    whole = rng.randint(*product.price_range)
    cents = rng.choice(("00", "00", "00", "00", "50", "25", "75", "99"))
    return Decimal(f"{whole}.{cents}")


def _lines(rng: random.Random, seller: Seller) -> tuple[InvoiceLine, ...]:
    count = rng.choices((1, 2, 3, 4, 5, 6), weights=(30, 25, 18, 12, 9, 6))[0]
    products = rng.sample(seller.catalogue, min(count, len(seller.catalogue)))
    return tuple(
        InvoiceLine(
            line_id=i,
            product_id=p.product_id,
            description=p.description,
            quantity=_quantity(rng, p),
            unit_price=_unit_price(rng, p),
            unit_code=p.unit_code,
        )
        for i, p in enumerate(products, start=1)
    )


def generate_invoices(
    count: int = DEFAULT_COUNT,
    seed: int = DEFAULT_SEED,
    start: datetime | None = None,
) -> list[Invoice]:
    """``count`` invoices issued during the 4 days before ``start``, oldest first.

    Same arguments, same invoices. ``start`` defaults to ``DEFAULT_START`` (a fixed
    02:00 Bangkok time); a naive ``start`` is taken as Bangkok time. ``issued_at`` is in
    the seller's offset (+07:00 Thai, +03:00 Saudi, +02:00 Egyptian), due 30 days later.
    Invoice numbers run per seller and year in issue order: ``TH1-2026-001201``.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    start = DEFAULT_START if start is None else start
    if start.tzinfo is None:
        start = start.replace(tzinfo=BANGKOK)
    rng = random.Random(seed)
    sellers = {s.prefix: s for s in SELLERS}

    # Regular buyers: same name and phone on every invoice (the first is the specification's
    # own example number).
    used: set[str] = set()  # buyer names: one name, one buyer
    regulars: dict[str, list[tuple[Party, str]]] = {
        "TH": [
            (_buyer(rng, used, "TH", "บริษัท ศรีสยาม ค้าวัสดุ จำกัด"), "081-234-5678"),
            (_buyer(rng, used, "TH"), make_phone(rng, "th_intl_spaced")),
            (_buyer(rng, used, "TH"), make_phone(rng, "th_dashed")),
        ],
        "SA": [(_buyer(rng, used, "SA", "شركة الخليج للتوريدات"), make_phone(rng, "sa_local"))],
        "EG": [(_buyer(rng, used, "EG", "شركة الدلتا للتجارة"), make_phone(rng, "eg_local"))],
    }

    drafts: list[_Draft] = []
    for index in range(count):
        if index < len(FORCED_DRAFTS):
            prefix, buyer_country, fmt, name = FORCED_DRAFTS[index]
            seller = sellers[prefix]
            buyer = _buyer(rng, used, buyer_country, name)
            phone = _country_phone(rng, buyer_country, fmt)
        else:
            seller = rng.choices(SELLERS, weights=SELLER_WEIGHTS)[0]
            choices = BUYER_COUNTRY_WEIGHTS[seller.party.country]
            buyer_country = rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]
            if rng.random() < REPEAT_BUYER_SHARE:
                buyer, phone = rng.choice(regulars[buyer_country])
            else:
                buyer = _buyer(rng, used, buyer_country)
                phone = _country_phone(rng, buyer_country, _phone_format(rng, buyer_country))
        seconds = rng.randrange(60, int(ISSUE_WINDOW.total_seconds()))
        issued_at = (start - timedelta(seconds=seconds)).replace(microsecond=0)
        drafts.append(
            _Draft(
                seller=seller,
                buyer=buyer,
                phone=phone,
                issued_at=issued_at.astimezone(TZ_BY_COUNTRY[seller.party.country]),
                lines=_lines(rng, seller),
                payment_status=rng.choices(("unpaid", "partial", "paid"), weights=(85, 10, 5))[0],
            )
        )

    drafts.sort(key=lambda d: (d.issued_at, d.seller.prefix))
    running: dict[tuple[str, int], int] = {}
    invoices: list[Invoice] = []
    for draft in drafts:
        seller = draft.seller
        key = (seller.prefix, draft.issued_at.year)
        running[key] = running.get(key, seller.first_number) + 1
        country = seller.party.country
        invoice = Invoice(
            number=f"{seller.prefix}-{draft.issued_at.year}-{running[key]:06d}",
            seller=seller.party,
            buyer=draft.buyer,
            buyer_phone_raw=draft.phone,
            issued_at=draft.issued_at,
            due_date=draft.issued_at.date() + PAYMENT_TERMS,
            currency=CURRENCY_BY_COUNTRY[country],
            vat_rate=VAT_RATE_BY_COUNTRY[country],
            lines=draft.lines,
            payment_status=draft.payment_status,
        )
        invoices.append(_paid_at_issue(invoice, seed))
    return invoices


def _side_rng(seed: int, purpose: str, number: str) -> random.Random:
    """A stream of its own per invoice and purpose (str seeds hash with SHA-512, so the
    same in every process), leaving the main stream - and every other field - unshifted."""
    return random.Random(f"{seed}/{purpose}/{number}")


def _part_of(rng: random.Random, total: Decimal) -> Decimal:
    """30-70% of ``total`` in cents, at least one cent and at least one cent short of it."""
    share = Decimal(rng.randint(3000, 7000)) / Decimal(10000)
    return min(max(round_money(total * share), CENT), total - CENT)


def _paid_at_issue(invoice: Invoice, seed: int) -> Invoice:
    """What was paid when the invoice was issued, by its status (deposits, cash sales)."""
    if invoice.payment_status == "paid":
        return dataclasses.replace(
            invoice, amount_paid=invoice.grand_total, paid_at=invoice.issued_at
        )
    if invoice.payment_status == "partial":
        rng = _side_rng(seed, "paid-at-issue", invoice.number)
        return dataclasses.replace(invoice, amount_paid=_part_of(rng, invoice.grand_total))
    return invoice


#: The buyer's payment habits for invoices unpaid at issue: (share, kind). The rest never
#: pay. Kept in one place so the docstring of ``generate_payments`` and tests agree.
PAYMENT_HABITS: Final = (
    (0.30, "on_time"),  # in full, before the due date
    (0.15, "late"),  # in full, after the due date
    (0.10, "part"),  # part first; about half of them pay the rest later
)
DAY: Final = timedelta(days=1)
#: Payments are booked during the seller's business hours (local time: opens, closes).
BUSINESS_HOURS: Final = (time(9, 0), time(17, 0))


def _payment_time(rng: random.Random, invoice: Invoice, first: date, last: date) -> datetime:
    """A moment on a day in ``[first, last]`` during business hours, in the seller's offset
    (``issued_at`` carries it)."""
    day = first + timedelta(days=rng.randint(0, max(0, (last - first).days)))
    opens, closes = (h.hour * 60 + h.minute for h in BUSINESS_HOURS)
    minute = rng.randrange(opens, closes)
    return datetime.combine(day, time(minute // 60, minute % 60), tzinfo=invoice.issued_at.tzinfo)


def _event(invoice: Invoice, paid_at: datetime, amount: Decimal) -> dict[str, str]:
    return {
        "number": invoice.number,
        "paid_at": paid_at.isoformat(),
        "amount_paid": str(amount),
        "payment_status": "paid" if amount >= invoice.grand_total else "partial",
    }


def _invoice_payments(invoice: Invoice, seed: int) -> list[dict[str, str]]:
    rng = _side_rng(seed, "payments", invoice.number)
    issued, due, total = invoice.issued_at.date(), invoice.due_date, invoice.grand_total

    def paid_in_full(first: date, last: date) -> list[dict[str, str]]:
        return [_event(invoice, _payment_time(rng, invoice, first, last), total)]

    if invoice.payment_status == "partial":
        # Part paid at issue: about half settle the rest, some before and some after due.
        return paid_in_full(issued + 5 * DAY, due + 20 * DAY) if rng.random() < 0.5 else []
    if invoice.payment_status != "unpaid":
        return []
    roll, kind = rng.random(), "never"
    for share, habit in PAYMENT_HABITS:
        if roll < share:
            kind = habit
            break
        roll -= share
    if kind == "on_time":
        return paid_in_full(issued + 2 * DAY, due - DAY)
    if kind == "late":
        return paid_in_full(due + 3 * DAY, due + 25 * DAY)
    if kind == "never":
        return []
    first = _payment_time(rng, invoice, issued + 3 * DAY, due + 10 * DAY)
    events = [_event(invoice, first, _part_of(rng, total))]
    if rng.random() < 0.5:
        # The rest comes later, and always on a later day than the part.
        start = max(due + 5 * DAY, first.date() + DAY)
        events.append(_event(invoice, _payment_time(rng, invoice, start, due + 30 * DAY), total))
    return events


def generate_payments(
    invoices: Iterable[Invoice], seed: int = DEFAULT_SEED
) -> list[dict[str, str]]:
    """Payment events over time, as the ERP would record them, for ``invoices``.

    Each event is ``{"number", "paid_at", "amount_paid", "payment_status"}``: ``paid_at`` in
    ISO 8601 with the seller's offset, between 09:00 and 17:00 local time; ``amount_paid``
    the *cumulative* amount paid after the event (exact decimal string, never above the
    grand total); ``payment_status`` "partial" or "paid" after it (a "paid" event's amount
    is the grand total exactly). Sorted by ``(paid_at as an instant, number)``.

    Of the invoices **unpaid** at issue, roughly:

    - 30% pay in full before the due date (issue + 2 days .. due - 1 day);
    - 15% pay in full late (due + 3 .. due + 25 days);
    - 10% pay part (30-70%) between issue + 3 days and due + 10 days, and about half of
      those pay the rest later (due + 5 .. due + 30 days, after the part);
    - the rest (~45%) never pay.

    Of the invoices **partial** at issue, about half pay the rest between issue + 5 days
    and due + 20 days. Invoices **paid** at issue get no event.

    Deterministic: each invoice's events come from its own ``random.Random`` seeded from
    ``(seed, number)``, so they do not depend on which other invoices are passed, and the
    invoice stream of ``generate_invoices`` is untouched. With the defaults (issued
    2026-11-17..21, due 2026-12-17..21) a run as of 2026-12-29 finds invoices paid before
    due, paid late, partly paid and unpaid.
    """
    events = [event for invoice in invoices for event in _invoice_payments(invoice, seed)]
    events.sort(key=lambda e: (datetime.fromisoformat(e["paid_at"]), e["number"]))
    return events


def _write_lines(objects: Iterable[Mapping[str, object]], path: str | Path) -> int:
    """One JSON object per line (UTF-8, not ASCII-escaped); creates missing parent
    folders; returns how many were written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with target.open("w", encoding="utf-8", newline="\n") as handle:
        for obj in objects:
            handle.write(json.dumps(dict(obj), ensure_ascii=False) + "\n")
            written += 1
    return written


def write_payments_jsonl(events: Iterable[Mapping[str, str]], path: str | Path) -> int:
    """Write payment events (``generate_payments``); returns how many."""
    return _write_lines(events, path)


def write_jsonl(invoices: Iterable[Invoice], path: str | Path) -> int:
    """Write canonical records, one JSON object per line (UTF-8, not ASCII-escaped).

    Creates missing parent folders; returns the number of invoices written.
    """
    return _write_lines((invoice_to_dict(invoice) for invoice in invoices), path)


def phone_format_names(countries: Sequence[str] = ("TH", "SA", "EG")) -> list[str]:
    """Every phone format name used for buyers of ``countries`` (no repeats)."""
    return list(dict.fromkeys(f for c in countries for f, _ in PHONE_FORMATS[c]))
