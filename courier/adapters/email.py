"""E-mail out over SMTP (the standard library's ``smtplib``, in a worker thread), to a
real relay or to the sandbox; chosen in ``courier.wiring`` from settings.

Errors are sorted as every adapter sorts them (``courier.adapters.errors``):

* a 4xx reply (greylisting, mailbox busy, rate limits) or a connection that failed before
  the message was handed over: ``TransientError`` — nothing was sent, try again;
* a 5xx reply, or credentials refused: ``PermanentError`` with the reason a person reads;
* the line lost, or the reply timed out, *after* the message's DATA was sent:
  ``AmbiguousError`` — the relay may have taken it, and SMTP has no way to ask. The
  caller never resends such a message blindly (it is recorded ``unknown`` for a person).

Every connection has an explicit timeout (``DEFAULT_TIMEOUT_S``).
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Final, Literal, Protocol

from courier.adapters.errors import AmbiguousError, PermanentError, TransientError

DEFAULT_TIMEOUT_S: Final = 30.0
Security = Literal["starttls", "tls", "none"]


@dataclass(frozen=True)
class SentEmail:
    message_id: str
    reply: str  # the relay's answer to DATA, e.g. "250 2.0.0 queued as 4F2A..."


class EmailTransport(Protocol):
    async def send(self, message: EmailMessage) -> SentEmail: ...


def _reply_text(code: int, text: bytes | str) -> str:
    words = text.decode(errors="replace") if isinstance(text, bytes) else text
    return f"{code} {words}".strip()


def _sorted_error(code: int, text: bytes | str, what: str) -> Exception:
    reply = _reply_text(code, text)
    if 400 <= code < 500:
        return TransientError(f"{what}: relay answered {reply}")
    return PermanentError(f"Mail relay refused the {what}: {reply}", code=str(code), status=code)


class SmtpSender:
    """One connection per message: simple, and nothing is left half-open between runs."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: Security = "starttls",
        username: str = "",
        password: str = "",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        local_hostname: str | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._security = security
        self._username = username
        self._password = password
        self._timeout_s = timeout_s
        self._local_hostname = local_hostname

    async def send(self, message: EmailMessage) -> SentEmail:
        return await asyncio.to_thread(self._send, message)

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        if self._security == "tls":
            return smtplib.SMTP_SSL(
                self._host,
                self._port,
                timeout=self._timeout_s,
                local_hostname=self._local_hostname,
                context=context,
            )
        client = smtplib.SMTP(
            self._host, self._port, timeout=self._timeout_s, local_hostname=self._local_hostname
        )
        if self._security == "starttls":
            client.starttls(context=context)
        return client

    def _send(self, message: EmailMessage) -> SentEmail:
        message_id = str(message.get("Message-ID", ""))
        sender = message["From"].addresses[0].addr_spec
        recipients = [a.addr_spec for a in message["To"].addresses]
        if message.get("Cc"):
            recipients += [a.addr_spec for a in message["Cc"].addresses]
        try:
            client = self._connect()
        except smtplib.SMTPNotSupportedError as error:  # no STARTTLS: a settings problem
            raise PermanentError(f"Mail relay does not offer {self._security}: {error}") from error
        except (OSError, smtplib.SMTPException) as error:
            raise TransientError(f"cannot reach the mail relay: {error}") from error
        data_sent = False
        try:
            with client:
                client.ehlo_or_helo_if_needed()
                if self._username:
                    client.login(self._username, self._password)
                code, text = client.mail(sender)
                if code != 250:
                    raise _sorted_error(code, text, "sender")
                for recipient in recipients:
                    code, text = client.rcpt(recipient)
                    if code not in (250, 251):
                        raise _sorted_error(code, text, "recipient")
                data_sent = True  # from here on, the relay may have the message
                # CRLF line ends: smtplib sends bytes as given, and a relay reads a message
                # with bare LFs as one over-long line.
                code, text = client.data(
                    message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
                )
                if code != 250:
                    raise _sorted_error(code, text, "message")
                return SentEmail(message_id, _reply_text(code, text))
        except smtplib.SMTPAuthenticationError as error:
            raise PermanentError("Mail relay rejected our credentials", code="auth") from error
        except (TransientError, PermanentError):
            raise
        except smtplib.SMTPResponseException as error:
            raise _sorted_error(error.smtp_code, error.smtp_error, "message") from error
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as error:
            if data_sent:
                raise AmbiguousError(f"line lost after the message was sent: {error}") from error
            raise TransientError(f"line lost before the message was sent: {error}") from error
