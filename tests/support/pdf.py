"""Reading the PDFs the tests render: their text (poppler's ``pdftotext``) and pages."""

from __future__ import annotations

import io
import subprocess

import pikepdf


def pdf_text(pdf: bytes) -> str:
    """The text of ``pdf`` as ``pdftotext`` extracts it (pages separated by form feeds)."""
    return subprocess.run(
        ["pdftotext", "-enc", "UTF-8", "-", "-"], input=pdf, check=True, capture_output=True
    ).stdout.decode()


def page_count(pdf: bytes) -> int:
    with pikepdf.open(io.BytesIO(pdf)) as document:
        return len(document.pages)
