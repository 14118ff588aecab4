"""Validate XML against ETDA's own e-Tax Invoice 2.0 XSD *and* Schematron (tests only).

Why both counts: ETDA writes most business rules as ``sch:report``, and lxml's
``Schematron.validate()`` still returns True when a report fires. A document is valid
only when the XSD has no errors and the SVRL has no ``failed-assert`` and no
``successful-report``. The reference files live in ``<repo>/../shared/etda`` and are
compiled once per test session (the Schematron compiles to XSLT, which is not free).
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
TAX_INVOICE_XSD = SCHEMA_DIR / "TaxInvoice_CrossIndustryInvoice_2p0.xsd"
TAX_INVOICE_SCH = SCHEMA_DIR / "TaxInvoice_Schematron_2p0.sch"

_SVRL = "http://purl.oclc.org/dsdl/svrl"
_LOCATION_STEP = re.compile(r"\*\[local-name\(\)='([^']+)' and namespace-uri\(\)='[^']*'\]")


def safe_parser() -> Any:
    """No entity expansion, no DTD loading, no network: inputs under test are untrusted."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@functools.cache
def _validators() -> tuple[Any, Any]:
    for path in (TAX_INVOICE_XSD, TAX_INVOICE_SCH):
        if not path.is_file():
            raise FileNotFoundError(f"ETDA reference file missing: {path}")
    xsd = etree.XMLSchema(etree.parse(str(TAX_INVOICE_XSD), safe_parser()))
    schematron = isoschematron.Schematron(
        etree.parse(str(TAX_INVOICE_SCH), safe_parser()), store_report=True
    )
    return xsd, schematron


def _short_location(location: str | None) -> str:
    """``/*[local-name()='A' and namespace-uri()='...']/...`` -> ``/A/...``."""
    return _LOCATION_STEP.sub(r"\1", location or "?")


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def validate_etda(xml_bytes: bytes) -> list[str]:
    """Every problem ETDA's XSD and Schematron find in ``xml_bytes``; empty means valid."""
    xsd, schematron = _validators()
    try:
        document = etree.fromstring(xml_bytes, safe_parser())
    except etree.XMLSyntaxError as error:
        return [f"not well-formed XML: {error}"]
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
