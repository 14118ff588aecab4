"""The e-invoice by e-mail: subject, plain text and HTML from template files, and the
``EmailMessage`` with the invoice attached (pure: values in, a message out; sending is
the SMTP adapter's).

Templates live in ``courier/templates/email/`` as ``<kind>.<language>.{subject,txt,html}.j2``
with the same values as the SMS (``courier.messages.invoice_sms_values``) plus ``attached``.
The HTML part is autoescaped (a seller named ``<b>`` is shown as text); the plain part and
the subject are not HTML, and the subject is kept to one line (no header injection).
Every message carries a ``Message-ID`` made from its intent's key: the same intent, the
same id, which is how a resend of one intent can be recognised by the receiving side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from functools import cache
from pathlib import Path
from typing import Final

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from courier.domain import Invoice
from courier.messages import invoice_sms_values, language_for_country

TEMPLATES_DIR: Final = Path(__file__).resolve().parent / "templates" / "email"
LANGUAGES: Final = ("en", "th")
#: A PDF larger than this is not attached: the message carries the link only.
DEFAULT_MAX_ATTACHMENT_BYTES: Final = 7 * 1024 * 1024


class EmailTemplateError(ValueError):
    """No template of that kind and language, or one that cannot be rendered."""


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    maintype: str
    subtype: str


@cache
def _environment(templates_dir: Path) -> Environment:
    return Environment(
        loader=FileSystemLoader(templates_dir),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def email_language(country: str, setting: str = "auto") -> str:
    """The message's language: ``auto`` by the buyer's country (Thai for TH)."""
    choice = (setting or "auto").strip().lower()
    language = language_for_country(country) if choice == "auto" else choice
    return language if language in LANGUAGES else "en"


def render_email(
    invoice: Invoice,
    link: str,
    *,
    language: str,
    attached: bool,
    kind: str = "on_issue",
    extra_values: Mapping[str, str] | None = None,
    templates_dir: Path = TEMPLATES_DIR,
) -> EmailContent:
    """Subject, plain text and HTML of one message about ``invoice``."""
    values: dict[str, object] = {
        **invoice_sms_values(invoice, link),
        **(extra_values or {}),
        "attached": attached,
    }
    env = _environment(templates_dir)
    parts = {}
    for part in ("subject", "txt", "html"):
        name = f"{kind}.{language}.{part}.j2"
        try:
            parts[part] = env.get_template(name).render(values)
        except Exception as error:  # missing file, undefined value, syntax
            raise EmailTemplateError(f"e-mail template {name}: {error}") from None
    return EmailContent(one_line(parts["subject"]), parts["txt"], parts["html"])


def one_line(text: str) -> str:
    """A header value: whitespace (newlines included) collapsed to single spaces."""
    return " ".join(text.split())


def message_id_for(idempotency_key: str, domain: str) -> str:
    """``<hash-of-the-key@domain>``: stable per intent, revealing nothing of the invoice."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def build_email(
    content: EmailContent,
    *,
    sender: str,
    to: str,
    message_id: str,
    date: datetime,
    attachments: Sequence[Attachment] = (),
    reply_to: str | None = None,
    cc: str | None = None,
) -> EmailMessage:
    """A ``multipart/mixed`` message: ``multipart/alternative`` (plain, then HTML) and the
    attachments. Header values are one line each."""
    message = EmailMessage()
    message["From"] = one_line(sender)
    message["To"] = one_line(to)
    if cc:
        message["Cc"] = one_line(cc)
    if reply_to:
        message["Reply-To"] = one_line(reply_to)
    message["Subject"] = content.subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    message.set_content(content.text, subtype="plain", charset="utf-8")
    message.add_alternative(content.html, subtype="html", charset="utf-8")
    for attachment in attachments:
        message.add_attachment(
            attachment.content,
            maintype=attachment.maintype,
            subtype=attachment.subtype,
            filename=attachment.filename,
        )
    return message


def invoice_attachments(
    number: str,
    pdf: bytes | None,
    xml: bytes | None = None,
    max_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES,
) -> list[Attachment]:
    """The PDF/A-3 (its XML inside), and the XML beside it when given; nothing when the
    PDF is larger than ``max_bytes`` (the message then carries the link only)."""
    if pdf is None or len(pdf) > max_bytes:
        return []
    files = [Attachment(f"{number}.pdf", pdf, "application", "pdf")]
    if xml is not None:
        files.append(Attachment(f"{number}.xml", xml, "application", "xml"))
    return files
