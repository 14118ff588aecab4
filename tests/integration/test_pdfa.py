"""Hybrid PDF/A-3b invoices: real renderer output, the ETDA XML embedded, checked for real.

No Java veraPDF here, so conformance is checked three ways:

* structurally, with pikepdf + lxml: XMP (part 3, conformance B, agreement with the Info
  dictionary, a complete extension schema for every custom property), ``/AF``,
  ``/OutputIntents`` with an sRGB ICC stream, embedded fonts, annotation flags...;
* with poppler (``pdfinfo``, ``pdfdetach -saveall``, ``pdftotext``), as a receiver would;
* with pikepdf's PDF/A validator (``pikepdf.pdfa``, an allowlist built from the veraPDF
  PDF/A-3b rules). It does not model PDF/A extension schemas and denies any XMP namespace
  it does not know, so its only findings must be about the extension schema, and the same
  file with the extension schema and its properties removed must pass outright.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from lxml import etree
from pikepdf import Array, Dictionary, Name, String

from courier.documents.etda_xml import build_tax_invoice_xml, is_etda_applicable
from courier.documents.pdf import PdfRenderer
from courier.documents.pdfa import (
    ETDA_SCHEMA,
    ETDA_XML_FILENAME,
    UBL_SCHEMA,
    InvoiceXmlNotFoundError,
    PdfaError,
    embed_invoice_xml,
    extract_invoice_xml,
)
from courier.domain import Invoice
from courier.sample_data import generate_invoices

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("pdfinfo", "pdfdetach", "pdftotext")),
    reason="needs poppler-utils",
)

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "pdfaExtension": "http://www.aiim.org/pdfa/ns/extension/",
    "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#",
    "pdfaProperty": "http://www.aiim.org/pdfa/ns/property#",
}
#: Namespaces whose properties PDF/A predefines (XMP 2005 schemas + PDF/A identification).
PREDEFINED = {
    NS["dc"],
    NS["xmp"],
    NS["pdf"],
    NS["pdfaid"],
    "http://ns.adobe.com/xap/1.0/mm/",
    "http://ns.adobe.com/xap/1.0/rights/",
    "http://ns.adobe.com/photoshop/1.0/",
}
EXTENSION_NAMESPACES = {NS["pdfaExtension"], NS["pdfaSchema"], NS["pdfaProperty"]}
BKK = timezone(timedelta(hours=7))

UBL_INVOICE = """<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
         xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:UBLVersionID>2.1</cbc:UBLVersionID>
  <cbc:CustomizationID>urn:cen.eu:en16931:2017</cbc:CustomizationID>
  <cbc:ID>{number}</cbc:ID>
  <cbc:Note>شركة — ไทย — ünïcödé &amp; &lt;escapes&gt;</cbc:Note>
</Invoice>
"""


# ---- fixtures -------------------------------------------------------------------------------


def title_of(invoice: Invoice) -> str:
    return f"ใบกำกับภาษี / Tax Invoice {invoice.number}"


@pytest.fixture(scope="module")
def invoices() -> list[Invoice]:
    invoices = generate_invoices(5)
    assert all(is_etda_applicable(invoice) for invoice in invoices)
    return invoices


@pytest.fixture(scope="module")
def rendered(invoices: list[Invoice]) -> dict[str, bytes]:
    result = PdfRenderer().render_batch(invoices)
    assert result.ok, result.errors
    return result.pdfs


@pytest.fixture(scope="module")
def hybrids(invoices: list[Invoice], rendered: dict[str, bytes]) -> dict[str, Hybrid]:
    out = {}
    for invoice in invoices:
        xml = build_tax_invoice_xml(invoice)
        pdf = embed_invoice_xml(
            rendered[invoice.number],
            xml,
            xml_filename=ETDA_XML_FILENAME,
            title=title_of(invoice),
            profile="etda",
            document_date=invoice.issued_at,
        )
        out[invoice.number] = Hybrid(invoice, rendered[invoice.number], xml, pdf)
    return out


class Hybrid:
    def __init__(self, invoice: Invoice, source: bytes, xml: bytes, pdf: bytes) -> None:
        self.invoice = invoice
        self.source = source
        self.xml = xml
        self.pdf = pdf


@pytest.fixture(scope="module")
def ubl_hybrid() -> tuple[Invoice, bytes, bytes]:
    """A Saudi invoice (not an ETDA document) with a small UBL Invoice embedded."""
    invoice = next(i for i in generate_invoices(20) if not is_etda_applicable(i))
    source = PdfRenderer().render_one(invoice)
    xml = ubl_document(invoice)
    pdf = embed_invoice_xml(
        source,
        xml,
        xml_filename=f"{invoice.number}.xml",
        title=f"Tax Invoice {invoice.number}",
        profile="ubl",
        document_date=invoice.issued_at,
    )
    return invoice, xml, pdf


def ubl_document(invoice: Invoice) -> bytes:
    """The invoice's UBL from ``courier.documents.ubl_xml`` when that builder is available
    (another module, built in parallel), else a small hand-written UBL Invoice."""
    try:
        module = importlib.import_module("courier.documents.ubl_xml")
        document: bytes = module.build_ubl_invoice(invoice)
    except (ImportError, AttributeError):
        document = UBL_INVOICE.format(number=invoice.number).encode()
    return document


# ---- helpers --------------------------------------------------------------------------------


def open_pdf(data: bytes) -> pikepdf.Pdf:
    return pikepdf.open(io.BytesIO(data))


def xmp_of(doc: pikepdf.Pdf) -> Any:
    packet = doc.Root.Metadata.read_bytes()
    return etree.fromstring(packet)


def pdf_date(value: object) -> datetime:
    return pikepdf.models.metadata.decode_pdf_date(str(value))


def xmp_text(xmp: Any, path: str) -> str:
    values = xmp.xpath(path, namespaces=NS)
    assert len(values) == 1, (path, values)
    value = values[0]
    return str(value if isinstance(value, str) else value.text)


def resource_fonts(doc: pikepdf.Pdf) -> list[tuple[str, Any]]:
    """Every font reachable from page resources, form XObjects and Type 3 fonts."""
    fonts: list[tuple[str, Any]] = []
    pending: list[Any] = [page.obj.get("/Resources") for page in doc.pages]
    seen: set[tuple[int, int]] = set()
    while pending:
        resources = pending.pop()
        if not isinstance(resources, Dictionary):
            continue
        for _, font in resources.get("/Font", Dictionary()).items():
            if font.is_indirect and font.objgen in seen:
                continue
            seen.add(font.objgen)
            fonts.append((str(font.get("/BaseFont", "?")), font))
            if font.get("/Subtype") == Name.Type3:
                pending.append(font.get("/Resources"))
        for _, xobject in resources.get("/XObject", Dictionary()).items():
            if xobject.get("/Subtype") == Name.Form and xobject.objgen not in seen:
                seen.add(xobject.objgen)
                pending.append(xobject.get("/Resources"))
    return fonts


def font_program(font: Any) -> Any:
    if font.Subtype == Name.Type0:
        font = font.DescendantFonts[0]
    descriptor = font.get("/FontDescriptor")
    if descriptor is None:
        return None
    for key in ("/FontFile", "/FontFile2", "/FontFile3"):
        if key in descriptor:
            return descriptor[key]
    return None


def pdftotext(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    done = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, timeout=60
    )
    return done.stdout.decode("utf-8")


def strip_extension_schema(data: bytes) -> bytes:
    """The same file with the extension schema and its custom properties removed."""
    with open_pdf(data) as doc:
        xmp = xmp_of(doc)
        rdf = xmp.find("rdf:RDF", NS)
        for description in list(rdf):
            namespaces = {etree.QName(child).namespace for child in description}
            if namespaces - PREDEFINED:
                rdf.remove(description)
        packet = (
            b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            + etree.tostring(xmp, encoding="utf-8")
            + b'\n<?xpacket end="w"?>'
        )
        stream = pikepdf.Stream(doc, packet)
        stream.Type = Name.Metadata
        stream.Subtype = Name.XML
        doc.Root.Metadata = stream
        out = io.BytesIO()
        doc.save(out, fix_metadata_version=False, deterministic_id=True)
    return out.getvalue()


def pdfa_findings(data: bytes) -> list[Any]:
    """pikepdf's PDF/A-3b findings; ``[]`` means the validator approved the file."""
    pdfa = pytest.importorskip("pikepdf.pdfa", reason="pikepdf's PDF/A validator not available")
    report = pdfa.validate_written(io.BytesIO(data), "3b")
    findings = list(report.findings)
    assert report.passed == (not findings), report
    return findings


# ---- XMP ------------------------------------------------------------------------------------


def test_xmp_declares_pdfa_3b_and_agrees_with_info(hybrids: dict[str, Hybrid]) -> None:
    for hybrid in hybrids.values():
        with open_pdf(hybrid.pdf) as doc:
            stream = doc.Root.Metadata
            assert stream.Type == Name.Metadata and stream.Subtype == Name.XML
            assert "/Filter" not in stream  # plain-text XMP, findable by any tool
            packet = stream.read_bytes()
            header = re.match(rb"<\?xpacket ([^?]*)\?>", packet)
            assert header is not None
            assert b"bytes=" not in header.group(1) and b"encoding=" not in header.group(1)
            assert packet.rstrip().endswith(b"<?xpacket end='w'?>".replace(b"'", b'"'))

            xmp = xmp_of(doc)
            assert xmp_text(xmp, "//pdfaid:part") == "3"
            assert xmp_text(xmp, "//pdfaid:conformance") == "B"
            info = doc.docinfo
            title = title_of(hybrid.invoice)
            assert str(info.Title) == title
            assert xmp_text(xmp, "//dc:title/rdf:Alt/rdf:li[@xml:lang='x-default']") == title
            assert xmp_text(xmp, "//pdf:Producer") == str(info.Producer) == "WeasyPrint 70.0"
            assert xmp_text(xmp, "//xmp:CreatorTool") == str(info.Creator) == "Courier"
            issued = hybrid.invoice.issued_at
            created = datetime.fromisoformat(xmp_text(xmp, "//xmp:CreateDate"))
            modified = datetime.fromisoformat(xmp_text(xmp, "//xmp:ModifyDate"))
            metadata_date = datetime.fromisoformat(xmp_text(xmp, "//xmp:MetadataDate"))
            assert created == pdf_date(info.CreationDate) == issued
            assert modified == pdf_date(info.ModDate) == metadata_date == issued
            assert created.utcoffset() == timedelta(hours=7)  # the seller's own offset


def test_extension_schema_declares_every_custom_property(hybrids: dict[str, Hybrid]) -> None:
    hybrid = next(iter(hybrids.values()))
    with open_pdf(hybrid.pdf) as doc:
        xmp = xmp_of(doc)
    schemas = xmp.xpath("//pdfaExtension:schemas/rdf:Bag/rdf:li", namespaces=NS)
    assert len(schemas) == 1
    schema = schemas[0]
    assert schema.get(f"{{{NS['rdf']}}}parseType") == "Resource"
    # Every field of the PDF/A Schema value type, with the prefixes ISO 19005-3 requires.
    fields = {etree.QName(child).localname: child for child in schema}
    assert set(fields) == {"schema", "namespaceURI", "prefix", "property"}
    assert all(etree.QName(child).namespace == NS["pdfaSchema"] for child in schema)
    assert fields["schema"].text == "Electronic Tax Invoice PDFA Extension Schema"
    namespace = fields["namespaceURI"].text
    assert namespace == ETDA_SCHEMA.namespace
    prefix = fields["prefix"].text
    declared = {}
    for prop in fields["property"].xpath("rdf:Seq/rdf:li", namespaces=NS):
        assert prop.get(f"{{{NS['rdf']}}}parseType") == "Resource"
        values = {etree.QName(child).localname: child.text for child in prop}
        assert all(etree.QName(child).namespace == NS["pdfaProperty"] for child in prop)
        assert set(values) == {"name", "valueType", "category", "description"}
        assert values["valueType"] == "Text"
        assert values["category"] in ("external", "internal")
        assert values["description"]
        declared[values["name"]] = values

    # Every property outside the predefined schemas is declared, with the declared prefix.
    custom = [
        element
        for description in xmp.xpath("//rdf:RDF/rdf:Description", namespaces=NS)
        for element in description
        if etree.QName(element).namespace not in PREDEFINED | EXTENSION_NAMESPACES
    ]
    assert custom
    for element in custom:
        qname = etree.QName(element)
        assert qname.namespace == namespace
        assert element.prefix == prefix == "rsm"
        assert qname.localname in declared
    values = {etree.QName(element).localname: element.text for element in custom}
    assert values == {
        "DocumentFileName": ETDA_XML_FILENAME,
        "DocumentType": "Tax Invoice",
        "Version": "2.0",
    }


# ---- catalog: attachment, output intent, fonts ----------------------------------------------


def test_attachment_is_an_associated_embedded_file(hybrids: dict[str, Hybrid]) -> None:
    for hybrid in hybrids.values():
        with open_pdf(hybrid.pdf) as doc:
            af = doc.Root.AF
            assert isinstance(af, Array) and len(af) == 1
            filespec = af[0]
            assert filespec.is_indirect
            tree = pikepdf.NameTree(doc.Root.Names.EmbeddedFiles)
            assert list(tree.keys()) == [ETDA_XML_FILENAME]
            assert tree[ETDA_XML_FILENAME].objgen == filespec.objgen
            assert filespec.Type == Name.Filespec
            assert str(filespec.F) == str(filespec.UF) == ETDA_XML_FILENAME
            assert filespec.AFRelationship == Name.Alternative
            assert str(filespec.Desc) == "Tax Invoice XML Data"
            stream = filespec.EF.F
            assert filespec.EF.UF.objgen == stream.objgen
            assert stream.Type == Name.EmbeddedFile
            assert stream.Subtype == Name("/text/xml")
            params = stream.Params
            assert int(params.Size) == len(hybrid.xml)
            assert bytes(params.CheckSum) == hashlib.md5(hybrid.xml).digest()
            assert pdf_date(params.ModDate) == hybrid.invoice.issued_at
            assert stream.read_bytes() == hybrid.xml


def test_output_intent_is_srgb_with_embedded_profile(hybrids: dict[str, Hybrid]) -> None:
    for hybrid in hybrids.values():
        with open_pdf(hybrid.pdf) as doc:
            intents = doc.Root.OutputIntents
            assert len(intents) == 1
            intent = intents[0]
            assert intent.Type == Name.OutputIntent and intent.S == Name.GTS_PDFA1
            assert str(intent.OutputConditionIdentifier) == "sRGB IEC61966-2.1"
            profile = intent.DestOutputProfile
            assert isinstance(profile, pikepdf.Stream)
            assert int(profile.N) == 3
            icc = profile.read_bytes()
            assert icc[36:40] == b"acsp" and icc[16:20] == b"RGB "
            assert icc[12:16] in (b"mntr", b"prtr")  # ISO 19005-3 6.2.3
            assert int.from_bytes(icc[:4], "big") == len(icc)


def test_every_font_is_embedded(hybrids: dict[str, Hybrid]) -> None:
    for hybrid in hybrids.values():
        with open_pdf(hybrid.pdf) as doc:
            fonts = resource_fonts(doc)
            assert fonts
            for name, font in fonts:
                if font.Subtype == Name.Type3:
                    continue
                program = font_program(font)
                assert isinstance(program, pikepdf.Stream), f"font {name} is not embedded"
                assert len(program.read_bytes()) > 0


def test_file_level_requirements(hybrids: dict[str, Hybrid]) -> None:
    for hybrid in hybrids.values():
        assert hybrid.pdf.startswith(b"%PDF-1.7\n%")
        assert all(byte > 127 for byte in hybrid.pdf[10:14])  # binary comment line
        assert hybrid.pdf.rstrip(b"\r\n").endswith(b"%%EOF")
        with open_pdf(hybrid.pdf) as doc:
            assert not doc.is_encrypted and "/Encrypt" not in doc.trailer
            ids = doc.trailer.ID
            assert len(ids) == 2 and all(len(bytes(part)) == 16 for part in ids)
            assert "/AA" not in doc.Root and "/OpenAction" not in doc.Root
            assert "/JavaScript" not in doc.Root.Names
            assert doc.check_pdf_syntax() == []  # qpdf finds no structural problem
            for page in doc.pages:
                assert "/AA" not in page.obj
                resources = page.obj.Resources
                # WeasyPrint's empty /Pattern and /Shading dictionaries are dropped.
                assert all(len(value.keys()) > 0 for _, value in resources.items())


def test_page_count_and_text_unchanged(hybrids: dict[str, Hybrid], tmp_path: Path) -> None:
    for number, hybrid in hybrids.items():
        with open_pdf(hybrid.source) as before, open_pdf(hybrid.pdf) as after:
            assert len(after.pages) == len(before.pages)
        text = pdftotext(hybrid.pdf, tmp_path)
        assert number in text
        assert text == pdftotext(hybrid.source, tmp_path)


def test_poppler_reads_the_file_and_its_attachment(
    hybrids: dict[str, Hybrid], tmp_path: Path
) -> None:
    for number, hybrid in hybrids.items():
        folder = tmp_path / number
        folder.mkdir()
        path = folder / "invoice.pdf"
        path.write_bytes(hybrid.pdf)
        info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, timeout=60)
        assert info.returncode == 0 and info.stderr == ""
        assert re.search(r"^PDF version:\s+1\.7$", info.stdout, re.MULTILINE)
        assert re.search(r"^Encrypted:\s+no$", info.stdout, re.MULTILINE)
        assert re.search(r"^JavaScript:\s+no$", info.stdout, re.MULTILINE)
        listing = subprocess.run(
            ["pdfdetach", "-list", str(path)], capture_output=True, text=True, timeout=60
        )
        assert listing.stdout.splitlines() == ["1 embedded files", f"1: {ETDA_XML_FILENAME}"]
        out = folder / "detached"
        out.mkdir()
        done = subprocess.run(
            ["pdfdetach", "-saveall", "-o", str(out), str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0 and done.stderr == ""
        assert sorted(p.name for p in out.iterdir()) == [ETDA_XML_FILENAME]
        assert (out / ETDA_XML_FILENAME).read_bytes() == hybrid.xml


def test_extract_round_trips_byte_identical(hybrids: dict[str, Hybrid]) -> None:
    for hybrid in hybrids.values():
        assert extract_invoice_xml(hybrid.pdf) == (ETDA_XML_FILENAME, hybrid.xml)


# ---- independent validator ------------------------------------------------------------------


def test_pikepdf_pdfa_validator_only_objects_to_the_extension_schema(
    hybrids: dict[str, Hybrid],
) -> None:
    for hybrid in hybrids.values():
        findings = pdfa_findings(hybrid.pdf)
        unexpected = [
            finding
            for finding in findings
            if not (
                finding.rule == "ISO_19005_3:6.6.2.3.1-1"
                and re.search(r"pdfaExtension|pdfaSchema|pdfaProperty|rsm[:=]", finding.message)
            )
        ]
        assert unexpected == []
        assert findings  # it does see the extension schema (else this test tests nothing)
        stripped = pdfa_findings(strip_extension_schema(hybrid.pdf))
        assert stripped == []


def test_the_renderer_output_alone_is_not_pdfa(hybrids: dict[str, Hybrid]) -> None:
    """Sanity check of the validator: what embed_invoice_xml receives does not pass."""
    hybrid = next(iter(hybrids.values()))
    rules = {finding.rule for finding in pdfa_findings(hybrid.source)}
    assert "ISO_19005_3:6.6.2.1-1" in rules  # no XMP metadata


# ---- idempotence & determinism ----------------------------------------------------------------


def test_applying_twice_keeps_one_attachment(hybrids: dict[str, Hybrid]) -> None:
    hybrid = next(iter(hybrids.values()))
    later = hybrid.invoice.issued_at + timedelta(days=2)
    new_xml = hybrid.xml.replace(b"</rsm:TaxInvoice_CrossIndustryInvoice>", b"") + (
        b"<!-- corrected -->\n</rsm:TaxInvoice_CrossIndustryInvoice>"
    )
    again = embed_invoice_xml(
        hybrid.pdf,
        new_xml,
        xml_filename=ETDA_XML_FILENAME,
        title=title_of(hybrid.invoice),
        profile="etda",
        document_date=later,
    )
    with open_pdf(again) as doc:
        assert len(doc.Root.AF) == 1
        assert list(pikepdf.NameTree(doc.Root.Names.EmbeddedFiles).keys()) == [ETDA_XML_FILENAME]
        assert len(doc.Root.OutputIntents) == 1
        xmp = xmp_of(doc)
        # The creation date is kept, the modification date moves.
        assert pdf_date(doc.docinfo.CreationDate) == hybrid.invoice.issued_at
        assert pdf_date(doc.docinfo.ModDate) == later
        assert datetime.fromisoformat(xmp_text(xmp, "//xmp:ModifyDate")) == later
        assert len(xmp.xpath("//pdfaExtension:schemas/rdf:Bag/rdf:li", namespaces=NS)) == 1
    assert extract_invoice_xml(again) == (ETDA_XML_FILENAME, new_xml)


def test_same_arguments_same_bytes(hybrids: dict[str, Hybrid]) -> None:
    hybrid = next(iter(hybrids.values()))
    kwargs: dict[str, Any] = {
        "xml_filename": ETDA_XML_FILENAME,
        "title": title_of(hybrid.invoice),
        "profile": "etda",
        "document_date": hybrid.invoice.issued_at,
    }
    assert embed_invoice_xml(hybrid.source, hybrid.xml, **kwargs) == hybrid.pdf
    assert embed_invoice_xml(hybrid.pdf, hybrid.xml, **kwargs) == hybrid.pdf


def test_a_second_file_name_adds_a_second_associated_file(hybrids: dict[str, Hybrid]) -> None:
    hybrid = next(iter(hybrids.values()))
    second = build_tax_invoice_xml(hybrid.invoice)
    both = embed_invoice_xml(
        hybrid.pdf,
        second,
        xml_filename="copy.xml",
        title=title_of(hybrid.invoice),
        profile="etda",
        document_date=hybrid.invoice.issued_at,
    )
    with open_pdf(both) as doc:
        names = sorted(pikepdf.NameTree(doc.Root.Names.EmbeddedFiles).keys())
        assert names == [ETDA_XML_FILENAME, "copy.xml"]
        assert len(doc.Root.AF) == 2
        assert xmp_text(xmp_of(doc), "//*[local-name()='DocumentFileName']") == "copy.xml"


# ---- UBL profile ------------------------------------------------------------------------------


def test_ubl_profile(ubl_hybrid: tuple[Invoice, bytes, bytes], tmp_path: Path) -> None:
    invoice, xml, pdf = ubl_hybrid
    assert extract_invoice_xml(pdf) == (f"{invoice.number}.xml", xml)
    with open_pdf(pdf) as doc:
        xmp = xmp_of(doc)
        assert xmp_text(xmp, "//pdfaid:part") == "3"
        assert xmp_text(xmp, "//pdfaSchema:namespaceURI") == UBL_SCHEMA.namespace
        assert xmp_text(xmp, "//pdfaSchema:prefix") == "cubl"
        ns = {"cubl": UBL_SCHEMA.namespace}
        assert xmp.xpath("string(//cubl:DocumentType)", namespaces=ns) == "INVOICE"
        assert xmp.xpath("string(//cubl:Version)", namespaces=ns) == "2.1"
        assert (
            xmp.xpath("string(//cubl:ConformanceLevel)", namespaces=ns) == "urn:cen.eu:en16931:2017"
        )
        declared = xmp.xpath("//pdfaProperty:name/text()", namespaces=NS)
        assert declared == [name for name, _ in UBL_SCHEMA.properties]
        filespec = doc.Root.AF[0]
        assert str(filespec.Desc) == "UBL Invoice XML Data"
        assert filespec.AFRelationship == Name.Alternative
    assert invoice.number in pdftotext(pdf, tmp_path)
    findings = pdfa_findings(strip_extension_schema(pdf))
    assert findings == []


def test_ubl_credit_note_without_customization(rendered: dict[str, bytes]) -> None:
    source = next(iter(rendered.values()))
    xml = b'<CreditNote xmlns="urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"/>'
    pdf = embed_invoice_xml(source, xml, xml_filename="cn.xml", title="Credit note", profile="ubl")
    with open_pdf(pdf) as doc:
        xmp = xmp_of(doc)
        ns = {"cubl": UBL_SCHEMA.namespace}
        assert xmp.xpath("string(//cubl:DocumentType)", namespaces=ns) == "CREDIT_NOTE"
        assert xmp.xpath("count(//cubl:ConformanceLevel)", namespaces=ns) == 0
        # No document_date: "now", in UTC, recorded the same in Info and XMP.
        modified = datetime.fromisoformat(xmp_text(xmp, "//xmp:ModifyDate"))
        assert abs(modified - datetime.now(UTC)) < timedelta(minutes=5)
        assert pdf_date(doc.docinfo.ModDate) == modified


def test_etda_document_type_follows_the_type_code(
    invoices: list[Invoice], rendered: dict[str, bytes]
) -> None:
    from dataclasses import replace

    invoice = replace(invoices[0], type_code="T03")
    pdf = embed_invoice_xml(
        rendered[invoices[0].number],
        build_tax_invoice_xml(invoice),
        xml_filename=ETDA_XML_FILENAME,
        title="Receipt/Tax Invoice",
        profile="etda",
        document_date=invoice.issued_at,
    )
    with open_pdf(pdf) as doc:
        xmp = xmp_of(doc)
        assert xmp_text(xmp, "//*[local-name()='DocumentType']") == "Receipt/Tax Invoice"
        assert str(doc.Root.AF[0].Desc) == "Receipt/Tax Invoice XML Data"


# ---- WeasyPrint features PDF/A forbids or constrains ------------------------------------------

# A 2x2 PNG: WeasyPrint writes it with /Interpolate true (image-rendering: auto).
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb"
    "6QAAAABJRU5ErkJggg=="
)


def test_links_images_and_other_attachments_are_repaired(tmp_path: Path) -> None:
    from weasyprint import HTML, Attachment

    html = f"""<html><head><title>x</title></head><body style="font-family: 'Noto Sans'">
      <h1>INV-LINKS-1</h1>
      <p><a href="https://example.com/pay">pay online</a> or <a href="#terms">terms</a></p>
      <img src="data:image/png;base64,{PNG}" style="width: 4cm">
      <p id="terms">Terms</p></body></html>"""
    source = HTML(string=html).write_pdf(
        attachments=[Attachment(string="note", base_url=None, name="readme.txt")]
    )
    with open_pdf(source) as doc:
        annots = doc.pages[0].obj.Annots
        assert len(annots) == 2 and all("/F" not in a for a in annots)
        assert any(
            obj.get("/Interpolate") is True
            for obj in doc.objects
            if isinstance(obj, pikepdf.Stream) and obj.get("/Subtype") == Name.Image
        )

    xml = b"<Invoice xmlns='urn:oasis:names:specification:ubl:schema:xsd:Invoice-2'/>"
    pdf = embed_invoice_xml(
        source,
        xml,
        xml_filename="invoice.xml",
        title="INV-LINKS-1",
        profile="ubl",
        document_date=datetime(2026, 1, 2, 3, 4, 5, tzinfo=BKK),
    )
    with open_pdf(pdf) as doc:
        for annot in doc.pages[0].obj.Annots:
            assert int(annot.F) & 0b100100111 == 4  # Print set; Invisible/Hidden/NoView not
        assert not any(
            "/Interpolate" in obj
            for obj in doc.objects
            if isinstance(obj, pikepdf.Stream) and obj.get("/Subtype") == Name.Image
        )
        names = sorted(pikepdf.NameTree(doc.Root.Names.EmbeddedFiles).keys())
        assert names == ["invoice.xml", "readme.txt"]
        assert len(doc.Root.AF) == 2
        for filespec in doc.Root.AF:
            assert isinstance(filespec.get("/AFRelationship"), Name)
            assert "/F" in filespec and "/UF" in filespec
            assert "/Subtype" in filespec.EF.F
    # The invoice XML is found among several attachments.
    assert extract_invoice_xml(pdf) == ("invoice.xml", xml)
    assert pdfa_findings(strip_extension_schema(pdf)) == []
    assert "INV-LINKS-1" in pdftotext(pdf, tmp_path)


# ---- refusals ----------------------------------------------------------------------------------


def _embed(pdf: bytes, xml: bytes, **overrides: Any) -> bytes:
    kwargs: dict[str, Any] = {
        "xml_filename": ETDA_XML_FILENAME,
        "title": "Tax Invoice",
        "profile": "etda",
        "document_date": datetime(2026, 1, 2, tzinfo=BKK),
    }
    kwargs.update(overrides)
    return embed_invoice_xml(pdf, xml, **kwargs)


def test_bad_arguments_are_refused(hybrids: dict[str, Hybrid]) -> None:
    hybrid = next(iter(hybrids.values()))
    ubl = UBL_INVOICE.format(number="X").encode()
    with pytest.raises(ValueError, match="unknown profile"):
        _embed(hybrid.source, hybrid.xml, profile="facturx")
    with pytest.raises(ValueError, match="needs an ETDA document"):
        _embed(hybrid.source, ubl)
    with pytest.raises(ValueError, match="needs a UBL"):
        _embed(hybrid.source, hybrid.xml, profile="ubl")
    with pytest.raises(ValueError, match="not well-formed"):
        _embed(hybrid.source, b"<rsm:oops")
    with pytest.raises(ValueError, match="timezone-aware"):
        _embed(hybrid.source, hybrid.xml, document_date=datetime(2026, 1, 2))
    for name in ("../ETDA-invoice.xml", "dir/a.xml", "a\\b.xml", "", " a.xml", "a\x00.xml"):
        with pytest.raises(ValueError, match="file name"):
            _embed(hybrid.source, hybrid.xml, xml_filename=name)
    with pytest.raises(ValueError, match="title"):
        _embed(hybrid.source, hybrid.xml, title="  ")


def test_unusable_pdfs_are_refused(hybrids: dict[str, Hybrid], tmp_path: Path) -> None:
    xml = next(iter(hybrids.values())).xml
    with pytest.raises(PdfaError, match="not a readable PDF"):
        _embed(b"%PDF-1.7 garbage", xml)

    # A page drawn with a standard-14 font that is not embedded.
    doc = pikepdf.new()
    doc.add_blank_page()
    page = doc.pages[0]
    font = Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica)
    page.obj.Resources = Dictionary(Font=Dictionary(F1=font))
    page.obj.Contents = doc.make_stream(b"BT /F1 12 Tf 72 720 Td (Hello) Tj ET")
    plain = io.BytesIO()
    doc.save(plain)
    with pytest.raises(PdfaError, match="Helvetica"):
        _embed(plain.getvalue(), xml)

    locked = io.BytesIO()
    with open_pdf(next(iter(hybrids.values())).source) as doc:
        doc.save(locked, encryption=pikepdf.Encryption(user="secret", owner="secret"))
    with pytest.raises(PdfaError, match="encrypted"):
        _embed(locked.getvalue(), xml)


def test_actions_and_scripts_are_removed(hybrids: dict[str, Hybrid]) -> None:
    """JavaScript, additional actions and Launch links: what PDF/A forbids goes, the rest stays."""
    hybrid = next(iter(hybrids.values()))
    with open_pdf(hybrid.source) as doc:
        script = Dictionary(S=Name.JavaScript, JS=String("app.alert('hi')"))
        doc.Root.OpenAction = doc.make_indirect(script)
        doc.Root.AA = Dictionary(WC=script)
        tree = pikepdf.NameTree.new(doc)
        tree["js"] = doc.make_indirect(script)
        doc.Root.Names = Dictionary(JavaScript=tree.obj)
        page = doc.pages[0].obj
        page.AA = Dictionary(O=script)
        rect = Array([10, 10, 50, 20])
        uri = Dictionary(S=Name.URI, URI=String("https://example.com"))
        launch = Dictionary(S=Name.Launch, F=String("calc.exe"))
        page.Annots = Array(
            [
                doc.make_indirect(Dictionary(Type=Name.Annot, Subtype=Name.Link, Rect=rect, A=uri)),
                doc.make_indirect(
                    Dictionary(Type=Name.Annot, Subtype=Name.Link, Rect=rect, A=launch, F=2)
                ),
                doc.make_indirect(Dictionary(Type=Name.Annot, Subtype=Name.Screen, Rect=rect)),
                doc.make_indirect(
                    Dictionary(Type=Name.Annot, Subtype=Name.Square, Rect=rect, C=Array([1, 0, 0]))
                ),
            ]
        )
        out = io.BytesIO()
        doc.save(out)
    pdf = _embed(out.getvalue(), hybrid.xml)
    with open_pdf(pdf) as doc:
        assert "/OpenAction" not in doc.Root and "/AA" not in doc.Root
        assert "/JavaScript" not in doc.Root.Names
        page = doc.pages[0].obj
        assert "/AA" not in page
        annots = list(page.Annots)
        assert [a.Subtype for a in annots] == [Name.Link, Name.Link, Name.Square]  # no Screen
        assert annots[0].A.S == Name.URI  # a URI link is allowed and kept
        assert "/A" not in annots[1]  # the Launch action is gone, the link area stays
        assert all(int(a.F) == 4 for a in annots)  # printable, no longer hidden
        assert annots[2].AP.N.Subtype == Name.Form  # an appearance, as PDF/A requires
    assert pdfa_findings(strip_extension_schema(pdf)) == []


def test_owner_password_only_encryption_is_removed(hybrids: dict[str, Hybrid]) -> None:
    hybrid = next(iter(hybrids.values()))
    locked = io.BytesIO()
    with open_pdf(hybrid.source) as doc:
        doc.save(locked, encryption=pikepdf.Encryption(user="", owner="owner-secret"))
    pdf = _embed(locked.getvalue(), hybrid.xml)
    with open_pdf(pdf) as doc:
        assert not doc.is_encrypted
    assert pdfa_findings(strip_extension_schema(pdf)) == []


def test_extract_without_attachment(hybrids: dict[str, Hybrid]) -> None:
    with pytest.raises(InvoiceXmlNotFoundError):
        extract_invoice_xml(next(iter(hybrids.values())).source)


def test_extract_detects_a_corrupted_attachment(hybrids: dict[str, Hybrid]) -> None:
    with open_pdf(next(iter(hybrids.values())).pdf) as doc:
        doc.Root.AF[0].EF.F.write(b"<tampered/>")
        out = io.BytesIO()
        doc.save(out)
    with pytest.raises(PdfaError, match="checksum"):
        extract_invoice_xml(out.getvalue())


def test_etda_sample_credit_note_document_type(rendered: dict[str, bytes]) -> None:
    from tests.support.etda_validation import SAMPLES_DIR

    sample = SAMPLES_DIR / "CDN_CN2017110001_Sample.xml"
    if not sample.exists():
        pytest.skip("ETDA samples not available")
    xml = sample.read_bytes()
    pdf = embed_invoice_xml(
        next(iter(rendered.values())),
        xml,
        xml_filename=ETDA_XML_FILENAME,
        title="Credit Note",
        profile="etda",
        document_date=datetime(2017, 11, 1, tzinfo=BKK),
    )
    with open_pdf(pdf) as doc:
        document_type = xmp_text(xmp_of(doc), "//*[local-name()='DocumentType']")
    code = etree.fromstring(xml).xpath(
        "string(./*[local-name()='ExchangedDocument']/*[local-name()='TypeCode'])"
    )
    assert document_type == {"80": "Debit Note", "81": "Credit Note"}[code]
    assert extract_invoice_xml(pdf) == (ETDA_XML_FILENAME, xml)


def test_strings_are_pdf_strings(hybrids: dict[str, Hybrid]) -> None:
    """Thai title in Info is a proper (UTF-16) text string that reads back unchanged."""
    hybrid = next(iter(hybrids.values()))
    with open_pdf(hybrid.pdf) as doc:
        assert isinstance(doc.docinfo.Title, String)
        assert str(doc.docinfo.Title) == title_of(hybrid.invoice)
