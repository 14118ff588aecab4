"""The composition root: the one place that turns ``Settings`` into adapters.

Everything else receives its collaborators; nothing else reads settings or the environment.
Sandbox versus real services is only a matter of URLs and credentials here.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import httpx

from courier.adapters.docstore import DocumentStore, HttpDocumentStore, HttpStoredFiles
from courier.adapters.email import SmtpSender
from courier.adapters.sms import SmsGateway, TwilioSmsGateway
from courier.adapters.source import FileInvoiceSource, HttpInvoiceSource, InvoiceSource
from courier.channels import EmailChannel
from courier.documents.parallel import RenderPool
from courier.documents.pdf import BatchResult
from courier.domain import Invoice
from courier.email_planning import EmailOptions, EtaxByEmail
from courier.ledger import Ledger
from courier.messages import PriceTable, load_price_table
from courier.receipts import STATUS_PATH
from courier.reminders.rules import RuleSet
from courier.reminders.rules_file import load_rules
from courier.retry import RetryPolicy
from courier.settings import Settings


@dataclass
class Services:
    settings: Settings
    ledger: Ledger
    source: InvoiceSource
    store: DocumentStore
    prices: PriceTable
    policy: RetryPolicy
    http: httpx.Client

    def close(self) -> None:
        self.http.close()

    def reminder_rules(self) -> RuleSet:
        """The reminder rules, read when a reminders step needs them (so a broken rules
        file stops reminders with its problems named, never the on-issue send)."""
        return load_rules(self.settings.reminder_rules_path)

    @property
    def renderer(self) -> PooledRenderer:
        return shared_renderer(self.settings.render_workers, self.settings.render_batch_size)


class PooledRenderer:
    """Renders over a pool of worker processes, each with one warm ``PdfRenderer``.

    Shared by the threads of a process (see ``shared_renderer``; the dashboard runs flows
    on several threads), so callers take turns: a ``RenderPool`` talks to its workers over
    one pipe each, and two callers at once would read each other's answers."""

    def __init__(self, workers: int, batch_size: int) -> None:
        self._pool = RenderPool(workers=workers)
        self._batch_size = batch_size
        self._turn = threading.Lock()

    def render_batch(self, invoices: Sequence[Invoice]) -> BatchResult:
        with self._turn:
            return self._pool.render(invoices, batch_size=self._batch_size)

    def close(self) -> None:
        with self._turn:
            self._pool.close()


@cache
def shared_renderer(workers: int, batch_size: int) -> PooledRenderer:
    """One pool per process, kept for the process's life: starting workers and loading
    fonts is the costly part, so every batch of every task reuses them."""
    return PooledRenderer(workers, batch_size)


def build_services(settings: Settings) -> Services:
    http = httpx.Client(follow_redirects=False)
    source: InvoiceSource
    if settings.source_is_http:
        source = HttpInvoiceSource(
            http,
            settings.invoice_source,
            settings.invoice_source_token.get_secret_value(),
            timeout_s=settings.http_timeout_s,
        )
    else:
        source = FileInvoiceSource(Path(settings.invoice_source))
    store = HttpDocumentStore(
        http,
        settings.docstore_url,
        settings.docstore_token.get_secret_value(),
        link_days=settings.document_link_days,
        timeout_s=settings.http_timeout_s,
    )
    ledger = Ledger(settings.ledger_path)
    ledger.migrate()
    return Services(
        settings=settings,
        ledger=ledger,
        source=source,
        store=store,
        prices=load_price_table(settings.pricing_path),
        policy=RetryPolicy(),
        http=http,
    )


def sms_gateway(settings: Settings, client: httpx.AsyncClient) -> SmsGateway:
    """The gateway for one event loop (an ``AsyncClient`` belongs to the loop that made it)."""
    return TwilioSmsGateway(
        client,
        settings.sms_base_url,
        settings.sms_account_sid,
        settings.sms_auth_token.get_secret_value(),
        settings.sms_sender,
        status_callback_url=(
            settings.receipts_public_url.rstrip("/") + STATUS_PATH
            if settings.receipts_public_url
            else ""
        ),
        timeout_s=settings.http_timeout_s,
    )


def email_transport(settings: Settings) -> SmtpSender | None:
    """The SMTP relay from settings; None while e-mail is not configured (no host)."""
    if not settings.email_enabled:
        return None
    return SmtpSender(
        settings.smtp_host,
        settings.smtp_port,
        security=settings.smtp_security,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value(),
        timeout_s=settings.smtp_timeout_s,
    )


def email_channel(settings: Settings, client: httpx.AsyncClient) -> EmailChannel | None:
    """The e-mail channel for one event loop (it reads the stored PDFs with ``client``);
    None while e-mail is not configured."""
    transport = email_transport(settings)
    if transport is None:
        return None
    return EmailChannel(
        transport,
        HttpStoredFiles(client, timeout_s=settings.http_timeout_s),
        settings.email_from,
        max_attachment_bytes=_attachment_bytes(settings),
    )


def email_options(settings: Settings, prices: PriceTable) -> EmailOptions | None:
    """What every e-mail of a run shares; None while e-mail is not configured."""
    if not settings.email_enabled:
        return None
    return EmailOptions(
        sender=settings.email_from,
        price=settings.email_price,
        currency=prices.currency,
        max_attachment_bytes=_attachment_bytes(settings),
        message_id_domain=settings.email_message_id_domain,
        language=settings.email_language,
        etax=EtaxByEmail(settings.etax_sellers, settings.etax_timestamp_address),
    )


def _attachment_bytes(settings: Settings) -> int:
    return int(settings.email_max_attachment_mb * 1024 * 1024)
