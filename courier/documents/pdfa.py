"""Hybrid invoices: a per-invoice PDF made PDF/A-3b, with its e-invoice XML embedded.

ETDA's e-Tax Invoice by Email route takes one file per invoice: a PDF/A-3 whose embedded
XML is the invoice in ETDA's format. :func:`embed_invoice_xml` turns a PDF made by
:class:`courier.documents.pdf.PdfRenderer` (or any PDF that embeds its fonts) into that
file; :func:`extract_invoice_xml` reads the XML back out, as a buyer's system would::

    hybrid = embed_invoice_xml(
        pdf_bytes, build_tax_invoice_xml(invoice),
        xml_filename=ETDA_XML_FILENAME, title="ใบกำกับภาษี / Tax Invoice TH1-2026-001201",
        profile="etda", document_date=invoice.issued_at,
    )
    name, xml = extract_invoice_xml(hybrid)   # ("ETDA-invoice.xml", the same bytes)

Both are pure functions over bytes (pikepdf + lxml; nothing is read at run time but the
sRGB profile WeasyPrint ships). The output is deterministic: the same arguments give the
same bytes (the trailer ``/ID`` is derived from the content). Applying the function again
replaces the attachment of the same file name instead of adding a second one, and rewrites
the metadata (keeping the first ``CreationDate``).

Why a post-processor and not WeasyPrint's ``pdf_variant="pdf/a-3b"``: the renderer writes
one PDF per *batch* and cuts it into per-invoice documents with pikepdf, and a new document
that receives pages keeps the pages only: the catalog's ``/Metadata``, ``/OutputIntents``
and ``/AF`` that WeasyPrint's variant writes are gone. (WeasyPrint's variant also leaves
``/Interpolate true`` on images, which PDF/A forbids.) So each per-invoice PDF is made
PDF/A-3b here, whatever wrote it:

* **Attachment.** The XML is an embedded file stream (``/Subtype /text#2Fxml``,
  ``/Params`` with ``Size``, ``CreationDate``, ``ModDate`` and the MD5 ``CheckSum``) in a
  file specification with ``/F`` and ``/UF``, listed in the catalog's ``/AF`` (an
  *associated file*, ISO 19005-3 6.8) and in ``/Names /EmbeddedFiles`` (so every viewer
  and ``pdfdetach`` lists it). ``/AFRelationship /Alternative``: the XML is a complete,
  machine-readable equivalent of the printed invoice, made from the same ``Invoice``. It
  is not what the PDF was rendered *from* (``/Source``), nor only some of the data shown
  (``/Data``, which Factur-X uses for its MINIMUM/BASIC WL profiles that do not carry the
  whole invoice; its full profiles use ``/Alternative``). ETDA's own reference generator
  (github.com/ETDA/e-TaxInvoice-PDFgen, ``PDFA3Invoice.cs``) embeds the ETDA XML the same
  way: ``text/xml``, ``/Alternative``, description "Tax Invoice XML Data".
* **XMP metadata** (uncompressed) declares ``pdfaid:part 3`` / ``pdfaid:conformance B``
  and mirrors the Info dictionary (``dc:title``, ``xmp:CreatorTool``, ``xmp:CreateDate``,
  ``xmp:ModifyDate``, ``pdf:Producer``...), which is rewritten to agree with it. It also
  describes the attachment in a custom namespace, declared with a PDF/A extension schema:

  - ``profile="etda"``: ETDA defines one, in the same reference generator
    (``Resources/EDocument_PDFAExtensionSchema.xml``): schema "Electronic Tax Invoice
    PDFA Extension Schema", namespace ``urn:etda:uncefact:data:standard:
    Invoice_CrossIndustryInvoice:2#``, prefix ``rsm``, Text properties
    ``DocumentFileName``, ``DocumentType`` and ``Version``. It is used verbatim (ETDA has
    no ``ConformanceLevel``, and none is invented in its namespace). ``DocumentType`` is
    the English name of the XML's ``ram:TypeCode`` ("Tax Invoice" for 388, as ETDA's tool
    writes), ``Version`` its ``schemeVersionID`` without the "v" ("2.0").
  - ``profile="ubl"``: no standard exists (the Factur-X/ZUGFeRD schema describes CII XML
    only), so Courier's own namespace ``urn:courier:pdfa:ubl:invoice:1p0#`` (prefix
    ``cubl``) carries the Factur-X properties: ``DocumentType`` INVOICE or CREDIT_NOTE,
    ``DocumentFileName``, ``Version`` (``cbc:UBLVersionID``, default 2.1) and
    ``ConformanceLevel`` (``cbc:CustomizationID``, when the XML has one).

  The XML must match the profile (an ETDA or a UBL root element), or ``ValueError``.
* **Output intent**: one ``/GTS_PDFA1`` intent with WeasyPrint's sRGB profile (ICC v2,
  ``N 3``), ``OutputConditionIdentifier (sRGB IEC61966-2.1)``, replacing any other.
* **Everything else PDF/A-3b asks of WeasyPrint output**: no encryption, a trailer
  ``/ID``, PDF 1.7 header; annotations get the Print flag (and lose Hidden/NoView...),
  their appearance dictionaries only ``/N`` (Link and Popup need none; others without one
  get an empty appearance); annotation types PDF/A forbids are removed; JavaScript,
  ``/AA``, Launch & co. actions, alternate presentations are removed; images lose
  ``/Interpolate``; empty resource dictionaries (WeasyPrint's empty ``/Pattern`` and
  ``/Shading``) are dropped; other embedded files get the MIME type, ``/UF`` and
  ``/AFRelationship`` they lack and are listed in ``/AF``.

What cannot be repaired raises :class:`PdfaError` instead of returning a file that only
claims to conform: a font whose program is not embedded, an interactive form, a PDF that
needs a password. Not checked (WeasyPrint does not produce them for our templates): page
content drawn in DeviceCMYK (it would need a CMYK output intent), ``.notdef`` glyphs.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Final, Literal

import pikepdf
from lxml import etree
from pikepdf import Array, Dictionary, Name, NameTree, String
from pikepdf.models.metadata import decode_pdf_date

Profile = Literal["etda", "ubl"]

#: The attachment name ETDA's reference generator gives the XML (and writes in the XMP).
ETDA_XML_FILENAME: Final = "ETDA-invoice.xml"

#: Output intent of every file (the profile is WeasyPrint's ``sRGB2014.icc``).
OUTPUT_CONDITION: Final = "sRGB IEC61966-2.1"
COLOR_REGISTRY: Final = "http://www.color.org"

XML_MIME_TYPE: Final = "text/xml"
AF_RELATIONSHIP: Final = "Alternative"

# XMP namespaces.
NS_X = "adobe:ns:meta/"
NS_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NS_XML = "http://www.w3.org/XML/1998/namespace"
NS_DC = "http://purl.org/dc/elements/1.1/"
NS_XMP = "http://ns.adobe.com/xap/1.0/"
NS_PDF = "http://ns.adobe.com/pdf/1.3/"
NS_PDFAID = "http://www.aiim.org/pdfa/ns/id/"
NS_PDFA_EXTENSION = "http://www.aiim.org/pdfa/ns/extension/"
NS_PDFA_SCHEMA = "http://www.aiim.org/pdfa/ns/schema#"
NS_PDFA_PROPERTY = "http://www.aiim.org/pdfa/ns/property#"

_XPACKET_BEGIN = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'.encode()
_XPACKET_END = b'\n<?xpacket end="w"?>'

# PDF annotation flags (ISO 32000-1, 12.5.3).
_ANNOT_PRINT = 4
_ANNOT_NOT_SHOWN = 1 | 2 | 32 | 256  # Invisible, Hidden, NoView, ToggleNoView
# ISO 32000-1 annotation types minus 3D, Sound, Screen and Movie (ISO 19005-3 6.3.1).
_ANNOTATION_TYPES = frozenset(
    {
        "/Text", "/Link", "/FreeText", "/Line", "/Square", "/Circle", "/Polygon", "/PolyLine",
        "/Highlight", "/Underline", "/Squiggly", "/StrikeOut", "/Stamp", "/Caret", "/Ink",
        "/Popup", "/FileAttachment", "/Widget", "/PrinterMark", "/TrapNet", "/Watermark",
        "/Redact",
    }
)  # fmt: skip
# Actions ISO 19005-3 6.5.1 forbids.
_FORBIDDEN_ACTIONS = frozenset(
    {
        "/Launch", "/Sound", "/Movie", "/ResetForm", "/ImportData", "/Hide", "/SetOCGState",
        "/Rendition", "/Trans", "/GoTo3DView", "/JavaScript",
    }
)  # fmt: skip
_ALLOWED_NAMED_ACTIONS = frozenset({"/NextPage", "/PrevPage", "/FirstPage", "/LastPage"})
_FONT_FILES = ("/FontFile", "/FontFile2", "/FontFile3")

# XML 1.0 Char production: anything else cannot be written into the XMP packet.
_XML_INVALID_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ETDA_ROOT_NAMESPACE = re.compile(r"urn:etda:uncefact:data:standard:\w+_CrossIndustryInvoice:2")
_UBL_ROOTS = {
    "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2": "INVOICE",
    "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2": "CREDIT_NOTE",
}
_UBL_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"

#: English names of ETDA document type codes, as ETDA's generator writes DocumentType.
ETDA_DOCUMENT_TYPES: Final[dict[str, str]] = {
    "388": "Tax Invoice",
    "T01": "Receipt",
    "T02": "Invoice/Tax Invoice",
    "T03": "Receipt/Tax Invoice",
    "T04": "Delivery Order/Tax Invoice",
    "T05": "Abbreviated Tax Invoice",
    "T06": "Receipt/Abbreviated Tax Invoice",
    "T07": "Cancellation Note",
    "380": "Invoice",
    "80": "Debit Note",
    "81": "Credit Note",
}


class PdfaError(ValueError):
    """The PDF cannot be made (or read as) a PDF/A-3b invoice; the message says why."""


class InvoiceXmlNotFoundError(LookupError):
    """The PDF has no embedded XML file."""


@dataclass(frozen=True)
class ExtensionSchema:
    """A PDF/A extension schema describing the embedded XML (all properties are Text)."""

    name: str
    namespace: str
    prefix: str
    #: (property name, description), in the order they are declared and written.
    properties: tuple[tuple[str, str], ...]


#: ETDA's schema, verbatim from ``EDocument_PDFAExtensionSchema.xml`` (see module doc).
ETDA_SCHEMA: Final = ExtensionSchema(
    name="Electronic Tax Invoice PDFA Extension Schema",
    namespace="urn:etda:uncefact:data:standard:Invoice_CrossIndustryInvoice:2#",
    prefix="rsm",
    properties=(
        ("DocumentFileName", "Name of the embedded XML invoice file"),
        ("DocumentType", "Type of the document"),
        ("Version", "Version of the ETDA XML data"),
    ),
)

#: Courier's schema for UBL, modelled on Factur-X's (no standard one exists).
UBL_SCHEMA: Final = ExtensionSchema(
    name="Courier UBL Invoice PDFA Extension Schema",
    namespace="urn:courier:pdfa:ubl:invoice:1p0#",
    prefix="cubl",
    properties=(
        ("DocumentFileName", "Name of the embedded UBL XML file"),
        ("DocumentType", "INVOICE or CREDIT_NOTE"),
        ("Version", "UBL version of the embedded XML"),
        ("ConformanceLevel", "Specification the embedded XML conforms to (CustomizationID)"),
    ),
)

SCHEMAS: Final[dict[str, ExtensionSchema]] = {"etda": ETDA_SCHEMA, "ubl": UBL_SCHEMA}


@dataclass(frozen=True)
class _XmlFacts:
    """What the metadata says about the embedded XML."""

    properties: dict[str, str]  # extension-schema property -> value
    description: str  # the file specification's /Desc


# ---- public API ----------------------------------------------------------------------------


def embed_invoice_xml(
    pdf: bytes,
    xml: bytes,
    *,
    xml_filename: str,
    title: str,
    profile: Profile | str,
    document_date: datetime | None = None,
) -> bytes:
    """Return ``pdf`` as a PDF/A-3b file with ``xml`` embedded as ``xml_filename``.

    ``profile`` (``"etda"`` or ``"ubl"``) says what the XML is; it must match the XML's
    root element. ``title`` becomes the document title (Info and ``dc:title``).
    ``document_date`` (timezone-aware; default: now) is the modification date of the file
    and the attachment, and the creation date unless the PDF already records one.
    An attachment already named ``xml_filename`` is replaced, not duplicated.

    Raises ``ValueError`` for unusable arguments (unknown profile, XML that is not
    well-formed or not of the profile, a file name with a path, a naive date) and
    :class:`PdfaError` (a ``ValueError``) for a PDF that cannot be made PDF/A-3b.
    """
    schema = _schema(profile)
    filename = _check_filename(xml_filename)
    clean_title = _clean_text(title).strip()
    if not clean_title:
        raise ValueError("title must not be empty")
    facts = _describe_xml(profile, xml, filename)
    when = _timestamp(document_date)

    with _open(pdf) as doc:
        _check_fonts_embedded(doc)
        _remove_forbidden_features(doc)
        _repair_annotations(doc)
        _repair_images(doc)
        _drop_empty_resources(doc)
        _set_output_intent(doc)
        _attach(doc, xml, filename, facts.description, when)
        _repair_embedded_files(doc)
        _write_metadata(doc, clean_title, when, schema, facts.properties)
        out = io.BytesIO()
        doc.save(
            out,
            compress_streams=True,
            object_stream_mode=pikepdf.ObjectStreamMode.generate,
            deterministic_id=True,
            min_version="1.7",
            encryption=False,
            fix_metadata_version=False,  # keep the XMP packet exactly as written here
        )
    return out.getvalue()


def extract_invoice_xml(pdf: bytes) -> tuple[str, bytes]:
    """Return ``(file name, bytes)`` of the XML embedded in ``pdf``.

    Looks at the catalog's associated files (``/AF``) first, then at the embedded-files
    name tree, and returns the first XML file (by MIME type or ``.xml`` name). Raises
    :class:`InvoiceXmlNotFoundError` if there is none, :class:`PdfaError` if the PDF
    cannot be read or the attachment does not match its recorded MD5 checksum.
    """
    with _open(pdf) as doc:
        for name, stream in _embedded_files(doc):
            if not _is_xml(name, stream):
                continue
            try:
                data = stream.read_bytes()
            except pikepdf.PdfError as exc:
                raise PdfaError(f"cannot read embedded file {name!r}: {exc}") from exc
            params = stream.get("/Params")
            checksum = params.get("/CheckSum") if isinstance(params, Dictionary) else None
            if (
                isinstance(checksum, String)
                and bytes(checksum) != hashlib.md5(data, usedforsecurity=False).digest()
            ):
                raise PdfaError(f"embedded file {name!r} does not match its checksum")
            return name, data
    raise InvoiceXmlNotFoundError("the PDF has no embedded XML file")


# ---- arguments -----------------------------------------------------------------------------


def _schema(profile: str) -> ExtensionSchema:
    try:
        return SCHEMAS[profile]
    except KeyError:
        raise ValueError(
            f"unknown profile {profile!r}: expected one of {sorted(SCHEMAS)}"
        ) from None


def _check_filename(name: str) -> str:
    """A bare file name: ``pdfdetach -saveall`` and mail clients write it as given."""
    if not name or name != name.strip() or name in (".", ".."):
        raise ValueError(f"invalid attachment file name {name!r}")
    if any(ord(char) < 0x20 for char in name) or _XML_INVALID_CHARS.search(name):
        raise ValueError(f"attachment file name {name!r} contains control characters")
    if any(char in name for char in "/\\"):
        raise ValueError(f"attachment file name {name!r} must be a bare name without a path")
    return name


def _clean_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry (so XMP and Info agree)."""
    return _XML_INVALID_CHARS.sub("", text)


def _timestamp(value: datetime | None) -> datetime:
    if value is None:
        return datetime.now(UTC).replace(microsecond=0)
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("document_date must be timezone-aware")
    return value.replace(microsecond=0)


def _parse_xml(xml: bytes) -> Any:
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        return etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"the invoice XML is not well-formed: {exc}") from exc


def _describe_xml(profile: str, xml: bytes, filename: str) -> _XmlFacts:
    root = _parse_xml(xml)
    qname = etree.QName(root)
    namespace = qname.namespace or ""
    if profile == "etda":
        if not _ETDA_ROOT_NAMESPACE.fullmatch(namespace):
            raise ValueError(f"profile 'etda' needs an ETDA document, got root {qname.text!r}")
        codes = root.xpath(
            "./*[local-name()='ExchangedDocument']/*[local-name()='TypeCode']/text()"
        )
        code = codes[0].strip() if codes else "388"
        document_type = ETDA_DOCUMENT_TYPES.get(code, code)
        versions = root.xpath(
            "./*[local-name()='ExchangedDocumentContext']"
            "/*[local-name()='GuidelineSpecifiedDocumentContextParameter']"
            "/*[local-name()='ID']/@schemeVersionID"
        )
        version = str(versions[0]).strip().lstrip("vV") if versions else ""
        return _XmlFacts(
            {
                "DocumentFileName": filename,
                "DocumentType": document_type,
                "Version": version or "2.0",
            },
            f"{document_type} XML Data",
        )
    document_type = _UBL_ROOTS.get(namespace)
    if document_type is None:
        raise ValueError(f"profile 'ubl' needs a UBL Invoice or CreditNote, got {qname.text!r}")
    version = root.findtext(f"{{{_UBL_CBC}}}UBLVersionID")
    customization = root.findtext(f"{{{_UBL_CBC}}}CustomizationID")
    properties = {
        "DocumentFileName": filename,
        "DocumentType": document_type,
        "Version": _clean_text(version or "").strip() or "2.1",
    }
    if customization and _clean_text(customization).strip():
        properties["ConformanceLevel"] = _clean_text(customization).strip()
    label = "Invoice" if document_type == "INVOICE" else "Credit Note"
    return _XmlFacts(properties, f"UBL {label} XML Data")


# ---- PDF structure -------------------------------------------------------------------------


def _open(pdf: bytes) -> pikepdf.Pdf:
    try:
        return pikepdf.open(io.BytesIO(pdf))
    except pikepdf.PasswordError as exc:
        raise PdfaError("the PDF is encrypted with a password; PDF/A forbids encryption") from exc
    except pikepdf.PdfError as exc:
        raise PdfaError(f"not a readable PDF: {exc}") from exc


def _name(value: object) -> str | None:
    return str(value) if isinstance(value, Name) else None


def _text(value: object) -> str | None:
    return str(value) if isinstance(value, String) else None


def _resource_dicts(doc: pikepdf.Pdf) -> Iterator[Dictionary]:
    """Every resource dictionary that page content can reach: pages, form XObjects,
    tiling patterns, Type 3 fonts and annotation appearances, each once."""
    pending: list[object] = []
    for page in doc.pages:
        pending.append(page.obj.get("/Resources"))
        pending.extend(_appearance_streams(page.obj))
    seen_streams: set[tuple[int, int]] = set()
    seen_dicts: set[tuple[int, int]] = set()
    while pending:
        item = pending.pop()
        if isinstance(item, pikepdf.Stream):
            if item.objgen in seen_streams:
                continue
            seen_streams.add(item.objgen)
            item = item.get("/Resources")
        if not isinstance(item, Dictionary):
            continue
        if item.is_indirect:
            if item.objgen in seen_dicts:
                continue
            seen_dicts.add(item.objgen)
        yield item
        for category in ("/XObject", "/Pattern"):
            children = item.get(category)
            if isinstance(children, Dictionary):
                pending.extend(
                    child for _, child in children.items() if isinstance(child, pikepdf.Stream)
                )
        fonts = item.get("/Font")
        if isinstance(fonts, Dictionary):
            for _, font in fonts.items():
                if isinstance(font, Dictionary) and _name(font.get("/Subtype")) == "/Type3":
                    pending.append(font.get("/Resources"))


def _appearance_streams(page: Dictionary) -> Iterator[pikepdf.Stream]:
    annots = page.get("/Annots")
    if not isinstance(annots, Array):
        return
    for annot in annots:
        appearances = annot.get("/AP") if isinstance(annot, Dictionary) else None
        if not isinstance(appearances, Dictionary):
            continue
        for _, appearance in appearances.items():
            if isinstance(appearance, pikepdf.Stream):
                yield appearance
            elif isinstance(appearance, Dictionary):
                yield from (s for _, s in appearance.items() if isinstance(s, pikepdf.Stream))


def _font_embedded(font: Dictionary) -> bool:
    subtype = _name(font.get("/Subtype"))
    if subtype == "/Type3":
        return True  # its glyphs are content streams in the file
    if subtype == "/Type0":
        descendants = font.get("/DescendantFonts")
        if not isinstance(descendants, Array) or len(descendants) == 0:
            return False
        descendant = descendants[0]
        if not isinstance(descendant, Dictionary):
            return False
        font = descendant
    descriptor = font.get("/FontDescriptor")
    return isinstance(descriptor, Dictionary) and any(key in descriptor for key in _FONT_FILES)


def _check_fonts_embedded(doc: pikepdf.Pdf) -> None:
    missing: set[str] = set()
    for resources in _resource_dicts(doc):
        fonts = resources.get("/Font")
        if not isinstance(fonts, Dictionary):
            continue
        for key, font in fonts.items():
            if isinstance(font, Dictionary) and not _font_embedded(font):
                missing.add(str(font.get("/BaseFont", key)))
    if missing:
        raise PdfaError(f"fonts not embedded (PDF/A needs every font): {sorted(missing)}")


def _action_allowed(action: object) -> bool:
    """Whether an action (and every action chained after it) is allowed in PDF/A."""
    pending = [action]
    seen: set[tuple[int, int]] = set()
    while pending:
        item = pending.pop()
        if isinstance(item, Array):
            pending.extend(item)
            continue
        if not isinstance(item, Dictionary):
            continue
        if item.is_indirect:
            if item.objgen in seen:
                continue
            seen.add(item.objgen)
        kind = _name(item.get("/S"))
        if kind in _FORBIDDEN_ACTIONS:
            return False
        if kind == "/Named" and _name(item.get("/N")) not in _ALLOWED_NAMED_ACTIONS:
            return False
        pending.append(item.get("/Next"))
    return True


def _remove_forbidden_features(doc: pikepdf.Pdf) -> None:
    """JavaScript, additional actions, forbidden actions and catalog keys (6.5, 6.10, 6.11)."""
    root = doc.Root
    for key in ("/AA", "/NeedsRendering", "/Requirements"):
        if key in root:
            del root[key]
    if "/OpenAction" in root and not _action_allowed(root.OpenAction):
        del root["/OpenAction"]
    names = root.get("/Names")
    if isinstance(names, Dictionary):
        for key in ("/JavaScript", "/AlternatePresentations"):
            if key in names:
                del names[key]
    for page in doc.pages:
        for key in ("/AA", "/PresSteps"):
            if key in page.obj:
                del page.obj[key]
    _repair_outline_actions(doc)


def _repair_outline_actions(doc: pikepdf.Pdf) -> None:
    outlines = doc.Root.get("/Outlines")
    pending = [outlines.get("/First")] if isinstance(outlines, Dictionary) else []
    seen: set[tuple[int, int]] = set()
    while pending:
        item = pending.pop()
        if not isinstance(item, Dictionary) or (item.is_indirect and item.objgen in seen):
            continue
        if item.is_indirect:
            seen.add(item.objgen)
        if "/A" in item and not _action_allowed(item.A):
            del item["/A"]
        pending.extend((item.get("/Next"), item.get("/First")))


def _repair_annotations(doc: pikepdf.Pdf) -> None:
    """Print flag, ``/AP`` with only ``/N``, no forbidden types or actions (6.3, 6.5)."""
    for page in doc.pages:
        annots = page.obj.get("/Annots")
        if not isinstance(annots, Array):
            continue
        kept = Array()
        for annot in annots:
            if not isinstance(annot, Dictionary):
                continue
            subtype = _name(annot.get("/Subtype"))
            if subtype not in _ANNOTATION_TYPES:
                continue  # 3D, Sound, Screen, Movie or unknown: not allowed in PDF/A
            if subtype == "/Widget":
                raise PdfaError("interactive form fields are not supported in PDF/A output")
            if subtype != "/Popup" or "/F" in annot:
                flags = int(annot.get("/F", 0))
                annot.F = (flags | _ANNOT_PRINT) & ~_ANNOT_NOT_SHOWN
            if "/AA" in annot:
                del annot["/AA"]
            if "/A" in annot and not _action_allowed(annot.A):
                del annot["/A"]
            _repair_appearance(doc, annot, subtype)
            kept.append(annot)
        if len(kept) != len(annots):
            page.obj.Annots = kept


def _repair_appearance(doc: pikepdf.Pdf, annot: Dictionary, subtype: str) -> None:
    appearances = annot.get("/AP")
    if isinstance(appearances, Dictionary):
        for key in list(appearances.keys()):
            if key != "/N":
                del appearances[key]
        if "/N" in appearances:
            return
        del annot["/AP"]
    if subtype in ("/Link", "/Popup"):
        return  # exempt from the appearance requirement (6.3.3)
    rect = [float(v) for v in annot.get("/Rect", Array([0, 0, 0, 0]))]
    if len(rect) != 4:
        return
    width, height = abs(rect[2] - rect[0]), abs(rect[3] - rect[1])
    if width == 0 and height == 0:
        return
    empty = pikepdf.Stream(doc, b"")
    empty.Type = Name.XObject
    empty.Subtype = Name.Form
    empty.BBox = Array([0, 0, width, height])
    annot.AP = Dictionary(N=empty)


def _repair_images(doc: pikepdf.Pdf) -> None:
    """No ``/Interpolate true`` (WeasyPrint sets it for ``image-rendering: auto``), no
    ``/Alternates`` or ``/OPI`` (6.2.8)."""
    for obj in doc.objects:
        if isinstance(obj, pikepdf.Stream) and _name(obj.get("/Subtype")) == "/Image":
            for key in ("/Interpolate", "/Alternates", "/OPI"):
                if key in obj:
                    del obj[key]


def _drop_empty_resources(doc: pikepdf.Pdf) -> None:
    for resources in list(_resource_dicts(doc)):
        for key in list(resources.keys()):
            value = resources.get(key)
            if isinstance(value, Dictionary) and len(value.keys()) == 0:
                del resources[key]


@functools.cache
def srgb_icc_profile() -> bytes:
    """WeasyPrint's sRGB profile (``weasyprint/pdf/sRGB2014.icc``, ICC v2), checked.

    Found through the import system without importing WeasyPrint (which loads Pango).
    """
    spec = find_spec("weasyprint")
    if spec is None or spec.origin is None:
        raise PdfaError("WeasyPrint is not installed: its sRGB ICC profile is needed")
    path = Path(spec.origin).parent / "pdf" / "sRGB2014.icc"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PdfaError(f"WeasyPrint's sRGB ICC profile is missing ({path}): {exc}") from exc
    if (
        len(data) < 132
        or data[36:40] != b"acsp"
        or data[12:16] not in (b"mntr", b"prtr")
        or data[16:20] != b"RGB "
        or data[8] > 4
    ):
        raise PdfaError(f"{path} is not an RGB output/monitor ICC profile")
    return data


def _set_output_intent(doc: pikepdf.Pdf) -> None:
    profile = pikepdf.Stream(doc, srgb_icc_profile())
    profile.N = 3
    profile.Alternate = Name.DeviceRGB
    intent = Dictionary(
        Type=Name.OutputIntent,
        S=Name.GTS_PDFA1,
        OutputConditionIdentifier=String(OUTPUT_CONDITION),
        Info=String(OUTPUT_CONDITION),
        RegistryName=String(COLOR_REGISTRY),
        DestOutputProfile=profile,
    )
    doc.Root.OutputIntents = Array([intent])


# ---- embedded files ------------------------------------------------------------------------


def _pdf_date(value: datetime) -> str:
    offset = value.utcoffset()
    assert offset is not None  # _timestamp guarantees an aware datetime
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    hours, minutes = divmod(abs(minutes), 60)
    return f"D:{value:%Y%m%d%H%M%S}{sign}{hours:02d}'{minutes:02d}'"


def _embedded_files_tree(doc: pikepdf.Pdf, create: bool) -> NameTree | None:
    names = doc.Root.get("/Names")
    if not isinstance(names, Dictionary):
        if not create:
            return None
        names = Dictionary()
        doc.Root.Names = names
    tree = names.get("/EmbeddedFiles")
    if isinstance(tree, Dictionary):
        return NameTree(tree)
    if not create:
        return None
    new = NameTree.new(doc)
    names.EmbeddedFiles = new.obj
    return new


def _filespec_name(filespec: Dictionary) -> str | None:
    return _text(filespec.get("/UF")) or _text(filespec.get("/F"))


def _filespec_stream(filespec: Dictionary) -> pikepdf.Stream | None:
    ef = filespec.get("/EF")
    if not isinstance(ef, Dictionary):
        return None
    stream = ef.get("/UF", ef.get("/F"))
    return stream if isinstance(stream, pikepdf.Stream) else None


def _catalog_af(doc: pikepdf.Pdf) -> Array:
    af = doc.Root.get("/AF")
    if not isinstance(af, Array):
        af = Array()
        doc.Root.AF = af
    return af


def _attach(doc: pikepdf.Pdf, data: bytes, filename: str, description: str, when: datetime) -> None:
    tree = _embedded_files_tree(doc, create=True)
    assert tree is not None
    old = tree.get(filename)
    if filename in tree:
        del tree[filename]
    af = _catalog_af(doc)
    stale = [
        index
        for index, item in enumerate(af)
        if isinstance(item, Dictionary)
        and (
            (old is not None and item.is_indirect and item.objgen == old.objgen)
            or _filespec_name(item) == filename
        )
    ]
    for index in reversed(stale):
        del af[index]

    stream = pikepdf.Stream(doc, data)
    stream.Type = Name.EmbeddedFile
    stream.Subtype = Name("/" + XML_MIME_TYPE)
    stream.Params = Dictionary(
        Size=len(data),
        CreationDate=String(_pdf_date(when)),
        ModDate=String(_pdf_date(when)),
        CheckSum=String(hashlib.md5(data, usedforsecurity=False).digest()),
    )
    filespec = doc.make_indirect(
        Dictionary(
            Type=Name.Filespec,
            F=String(filename),
            UF=String(filename),
            Desc=String(description),
            EF=Dictionary(F=stream, UF=stream),
            AFRelationship=Name("/" + AF_RELATIONSHIP),
        )
    )
    tree[filename] = filespec
    af.append(filespec)


def _filespecs(doc: pikepdf.Pdf) -> Iterator[Dictionary]:
    """File specifications of the catalog's /AF, the name tree and FileAttachment
    annotations, each once."""
    seen: set[tuple[int, int]] = set()
    candidates: list[object] = list(_catalog_af(doc)) if "/AF" in doc.Root else []
    tree = _embedded_files_tree(doc, create=False)
    if tree is not None:
        candidates.extend(value for _, value in tree.items())
    for page in doc.pages:
        annots = page.obj.get("/Annots")
        if isinstance(annots, Array):
            candidates.extend(
                annot.get("/FS")
                for annot in annots
                if isinstance(annot, Dictionary)
                and _name(annot.get("/Subtype")) == "/FileAttachment"
            )
    for item in candidates:
        if not isinstance(item, Dictionary):
            continue
        if item.is_indirect:
            if item.objgen in seen:
                continue
            seen.add(item.objgen)
        yield item


def _repair_embedded_files(doc: pikepdf.Pdf) -> None:
    """Other embedded files (e.g. WeasyPrint ``rel=attachment``) made PDF/A-3 conforming:
    MIME type, /F and /UF, /AFRelationship, listed in /AF (6.8)."""
    af = _catalog_af(doc)
    listed = {item.objgen for item in af if isinstance(item, Dictionary) and item.is_indirect}
    for filespec in list(_filespecs(doc)):
        stream = _filespec_stream(filespec)
        if stream is None:
            continue
        if "/Subtype" not in stream:
            stream.Subtype = Name("/application/octet-stream")
        name = _filespec_name(filespec) or "attachment"
        if "/F" not in filespec:
            filespec.F = String(name)
        if "/UF" not in filespec:
            filespec.UF = String(name)
        if not isinstance(filespec.get("/AFRelationship"), Name):
            filespec.AFRelationship = Name.Unspecified
        if not filespec.is_indirect:
            continue  # a direct file specification cannot be listed by reference
        if filespec.objgen not in listed:
            af.append(filespec)
            listed.add(filespec.objgen)


def _embedded_files(doc: pikepdf.Pdf) -> Iterator[tuple[str, pikepdf.Stream]]:
    for filespec in _filespecs(doc):
        stream = _filespec_stream(filespec)
        if stream is not None:
            yield _filespec_name(filespec) or "", stream


def _is_xml(name: str, stream: pikepdf.Stream) -> bool:
    mime = (_name(stream.get("/Subtype")) or "").lstrip("/").lower()
    return (
        mime in ("text/xml", "application/xml")
        or mime.endswith("+xml")
        or (name.lower().endswith(".xml"))
    )


# ---- metadata ------------------------------------------------------------------------------


def _existing_date(value: object) -> datetime | None:
    text = _text(value)
    if text is None:
        return None
    try:
        parsed = decode_pdf_date(text)
    except (ValueError, TypeError):
        return None
    return parsed.replace(microsecond=0) if parsed.tzinfo is not None else None


def _write_metadata(
    doc: pikepdf.Pdf,
    title: str,
    when: datetime,
    schema: ExtensionSchema,
    properties: dict[str, str],
) -> None:
    """Rewrite the Info dictionary and the XMP packet so that they agree."""
    info = doc.docinfo
    created = _existing_date(info.get("/CreationDate")) or when
    producer = _clean_text(_text(info.get("/Producer")) or "").strip() or (
        f"Courier (pikepdf {pikepdf.__version__})"
    )
    creator = _clean_text(_text(info.get("/Creator")) or "").strip() or "Courier"
    author = _clean_text(_text(info.get("/Author")) or "").strip()
    subject = _clean_text(_text(info.get("/Subject")) or "").strip()
    keywords = _clean_text(_text(info.get("/Keywords")) or "").strip()

    for key in ("/Trapped", "/Author", "/Subject", "/Keywords"):
        if key in info:
            del info[key]
    info.Title = String(title)
    info.Creator = String(creator)
    info.Producer = String(producer)
    info.CreationDate = String(_pdf_date(created))
    info.ModDate = String(_pdf_date(when))
    if author:
        info.Author = String(author)
    if subject:
        info.Subject = String(subject)
    if keywords:
        info.Keywords = String(keywords)

    packet = _xmp_packet(
        title=title,
        creator=creator,
        producer=producer,
        created=created,
        modified=when,
        author=author,
        subject=subject,
        keywords=keywords,
        schema=schema,
        properties=properties,
    )
    metadata = pikepdf.Stream(doc, packet)
    metadata.Type = Name.Metadata
    metadata.Subtype = Name.XML
    doc.Root.Metadata = metadata


def _xmp_packet(
    *,
    title: str,
    creator: str,
    producer: str,
    created: datetime,
    modified: datetime,
    author: str,
    subject: str,
    keywords: str,
    schema: ExtensionSchema,
    properties: dict[str, str],
) -> bytes:
    def q(namespace: str, name: str) -> str:
        return f"{{{namespace}}}{name}"

    xmpmeta = etree.Element(q(NS_X, "xmpmeta"), nsmap={"x": NS_X})
    rdf = etree.SubElement(xmpmeta, q(NS_RDF, "RDF"), nsmap={"rdf": NS_RDF})

    def description(nsmap: dict[str, str]) -> Any:
        element = etree.SubElement(rdf, q(NS_RDF, "Description"), nsmap=nsmap)
        element.set(q(NS_RDF, "about"), "")
        return element

    def simple(parent: Any, namespace: str, name: str, value: str) -> Any:
        element = etree.SubElement(parent, q(namespace, name))
        element.text = value
        return element

    def lang_alt(parent: Any, namespace: str, name: str, value: str) -> None:
        alt = etree.SubElement(etree.SubElement(parent, q(namespace, name)), q(NS_RDF, "Alt"))
        item = simple(alt, NS_RDF, "li", value)
        item.set(q(NS_XML, "lang"), "x-default")

    def resource(parent: Any) -> Any:
        item = etree.SubElement(parent, q(NS_RDF, "li"))
        item.set(q(NS_RDF, "parseType"), "Resource")
        return item

    ident = description({"pdfaid": NS_PDFAID})
    simple(ident, NS_PDFAID, "part", "3")
    simple(ident, NS_PDFAID, "conformance", "B")

    dc = description({"dc": NS_DC})
    simple(dc, NS_DC, "format", "application/pdf")
    lang_alt(dc, NS_DC, "title", title)
    if author:
        seq = etree.SubElement(etree.SubElement(dc, q(NS_DC, "creator")), q(NS_RDF, "Seq"))
        simple(seq, NS_RDF, "li", author)
    if subject:
        lang_alt(dc, NS_DC, "description", subject)

    basic = description({"xmp": NS_XMP})
    simple(basic, NS_XMP, "CreatorTool", creator)
    simple(basic, NS_XMP, "CreateDate", created.isoformat())
    simple(basic, NS_XMP, "ModifyDate", modified.isoformat())
    simple(basic, NS_XMP, "MetadataDate", modified.isoformat())

    adobe = description({"pdf": NS_PDF})
    simple(adobe, NS_PDF, "Producer", producer)
    if keywords:
        simple(adobe, NS_PDF, "Keywords", keywords)

    extension = description(
        {
            "pdfaExtension": NS_PDFA_EXTENSION,
            "pdfaSchema": NS_PDFA_SCHEMA,
            "pdfaProperty": NS_PDFA_PROPERTY,
        }
    )
    bag = etree.SubElement(
        etree.SubElement(extension, q(NS_PDFA_EXTENSION, "schemas")), q(NS_RDF, "Bag")
    )
    entry = resource(bag)
    simple(entry, NS_PDFA_SCHEMA, "schema", schema.name)
    simple(entry, NS_PDFA_SCHEMA, "namespaceURI", schema.namespace)
    simple(entry, NS_PDFA_SCHEMA, "prefix", schema.prefix)
    declared = etree.SubElement(
        etree.SubElement(entry, q(NS_PDFA_SCHEMA, "property")), q(NS_RDF, "Seq")
    )
    for name, text in schema.properties:
        prop = resource(declared)
        simple(prop, NS_PDFA_PROPERTY, "name", name)
        simple(prop, NS_PDFA_PROPERTY, "valueType", "Text")
        simple(prop, NS_PDFA_PROPERTY, "category", "external")
        simple(prop, NS_PDFA_PROPERTY, "description", text)

    values = description({schema.prefix: schema.namespace})
    for name, _ in schema.properties:
        if name in properties:
            simple(values, schema.namespace, name, properties[name])

    body: bytes = etree.tostring(
        xmpmeta, encoding="utf-8", xml_declaration=False, pretty_print=True
    )
    return _XPACKET_BEGIN + body + _XPACKET_END
