"""The ledger: one DuckDB file holding every invoice, document, message and charge.

DuckDB allows one read-write process *or* many readers, never both. So connections are
short (open, do one unit of work, close) and opening retries on the lock error; the
dashboard opens read-only the same way. Committed rows survive a crash; the outbox row of
a send is committed *before* the gateway is called, which is what makes "never twice"
possible (see ``courier.sending``).

One module per aggregate (``invoices``, ``documents``, ``outbox``, ``receipts``, ``runs``,
``reminders``, ``mail_back``), each a part of ``Ledger``; the schema is numbered SQL migrations
(``migrations.py``, ``NNNN_*.sql``) and ``views.sql``. Analysts read the documented views
``invoice_status``, ``charges``, ``deliveries``, ``reminder_history``; see the README.
"""

from __future__ import annotations

from courier.ledger.connection import LOCK_WAIT_S, LedgerBusy, LedgerFile, now_utc
from courier.ledger.documents import DocumentRecords
from courier.ledger.invoices import InvoiceRecords, PhoneNotTextable, UnknownInvoice
from courier.ledger.mail_back import BuyerChannels, MailBack
from courier.ledger.outbox import AcceptedSend, FailedSend, Outbox
from courier.ledger.receipts import Receipts
from courier.ledger.reminders import Reminders
from courier.ledger.runs import Runs

__all__ = [
    "LOCK_WAIT_S",
    "AcceptedSend",
    "FailedSend",
    "Ledger",
    "LedgerBusy",
    "PhoneNotTextable",
    "UnknownInvoice",
    "now_utc",
]


class Ledger(
    InvoiceRecords,
    DocumentRecords,
    Outbox,
    Receipts,
    Runs,
    Reminders,
    MailBack,
    BuyerChannels,
    LedgerFile,
):
    """The ledger file; each aggregate's reads and writes are methods of its part."""
