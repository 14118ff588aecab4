"""Validate XML against ETDA's own e-Tax Invoice 2.0 XSD *and* Schematron (tests only).

The schema pair is picked by the document's root element (``TaxInvoice_CrossIndustryInvoice``,
``Receipt_...``, ``DebitCreditNote_...``, ``AbbreviatedTaxInvoice_...``): each ETDA document
type has its own namespaces, XSD and Schematron. Why both counts: ETDA writes most business
rules as ``sch:report``, and lxml's ``Schematron.validate()`` still returns True when a
report fires. A document is valid only when the XSD has no errors and the SVRL has no
``failed-assert`` and no ``successful-report``. The reference files live in
``<repo>/../shared/etda`` and are compiled once per type per test session (the Schematron
compiles to XSLT, which is not free).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from lxml import etree, isoschematron

REPO_ROOT = Path(__file__).resolve().parents[2]
ETDA_DIR = REPO_ROOT.parent / "shared" / "etda"
SCHEMA_DIR = ETDA_DIR / "schema" / "ETDA" / "data" / "standard"
SAMPLES_DIR = ETDA_DIR / "samples"

#: The ETDA document types (schema file prefix) this validator knows, by root element.
DOCUMENT_SCHEMAS: dict[str, str] = {
    f"{schema}_CrossIndustryInvoice": schema
    for schema in ("TaxInvoice", "Receipt", "DebitCreditNote", "AbbreviatedTaxInvoice")
}


def schema_files(schema: str) -> tuple[Path, Path]:
    """(XSD, Schematron) of an ETDA document type, e.g. ``"Receipt"``."""
    return (
        SCHEMA_DIR / f"{schema}_CrossIndustryInvoice_2p0.xsd",
        SCHEMA_DIR / f"{schema}_Schematron_2p0.sch",
    )


TAX_INVOICE_XSD, TAX_INVOICE_SCH = schema_files("TaxInvoice")

_SVRL = "http://purl.oclc.org/dsdl/svrl"
_LOCATION_STEP = re.compile(r"\*\[local-name\(\)='([^']+)' and namespace-uri\(\)='[^']*'\]")


def safe_parser() -> Any:
    """No entity expansion, no DTD loading, no network: inputs under test are untrusted."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@functools.cache
def _validators(schema: str) -> tuple[Any, Any]:
    xsd_path, sch_path = schema_files(schema)
    for path in (xsd_path, sch_path):
        if not path.is_file():
            raise FileNotFoundError(f"ETDA reference file missing: {path}")
    xsd = etree.XMLSchema(etree.parse(str(xsd_path), safe_parser()))
    schematron = isoschematron.Schematron(
        etree.parse(str(sch_path), safe_parser()), store_report=True
    )
    return xsd, schematron


def _short_location(location: str | None) -> str:
    """``/*[local-name()='A' and namespace-uri()='...']/...`` -> ``/A/...``."""
    return _LOCATION_STEP.sub(r"\1", location or "?")


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def validate_etda(xml_bytes: bytes) -> list[str]:
    """Every problem ETDA's XSD and Schematron find in ``xml_bytes``; empty means valid."""
    try:
        document = etree.fromstring(xml_bytes, safe_parser())
    except etree.XMLSyntaxError as error:
        return [f"not well-formed XML: {error}"]
    root_name = etree.QName(document).localname
    schema = DOCUMENT_SCHEMAS.get(root_name)
    if schema is None:
        return [
            f"not an ETDA document: root element {root_name!r} (expected one of "
            f"{', '.join(DOCUMENT_SCHEMAS)})"
        ]
    xsd, schematron = _validators(schema)
    problems: list[str] = []
    if not xsd.validate(document):
        problems.extend(f"XSD line {error.line}: {error.message}" for error in xsd.error_log)
    schematron.validate(document)
    report = schematron.validation_report
    for kind in ("failed-assert", "successful-report"):
        for node in report.iterfind(f".//{{{_SVRL}}}{kind}"):
            text = node.findtext(f"{{{_SVRL}}}text")
            where = _short_location(node.get("location"))
            problems.append(f"Schematron {kind} at {where}: {_one_line(text)}")
    return problems
