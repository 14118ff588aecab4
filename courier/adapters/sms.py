"""SMS gateway: Twilio's Messages API (2010-04-01), spoken to Twilio or to the sandbox.

The same adapter serves both: only the base URL and credentials differ, chosen in
``courier.wiring``. Twilio has no idempotency key for sends, so this adapter never retries a
create by itself; ``courier.sending`` owns that decision and looks messages up after an
ambiguous failure (``find_sent``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import httpx

from courier.adapters.errors import AmbiguousError, PermanentError, TransientError
from courier.adapters.http import (
    classify_transport_error,
    make_timeout,
    raise_for_transient_status,
)

API_VERSION = "2010-04-01"
#: Page size when listing messages to find one after an ambiguous send.
LOOKUP_PAGE_SIZE = 100
#: Pages to walk at most in that lookup (a day of one number's messages is far smaller).
LOOKUP_MAX_PAGES = 20

#: Twilio error codes that a person must act on, with the reason shown to them.
PERMANENT_REASONS: dict[int, str] = {
    21211: "Invalid telephone number",
    21614: "Not a mobile number",
    21610: "Buyer opted out (STOP)",
    21612: "Number cannot be reached from this sender",
    21408: "Sending to this country is not enabled",
    21602: "Message body is empty",
    21617: "Message body is too long",
    20003: "SMS gateway rejected our credentials",
}


@dataclass(frozen=True)
class SentMessage:
    sid: str
    to: str
    body: str
    status: str
    num_segments: int | None
    price: Decimal | None
    error_code: str | None


class SmsGateway(Protocol):
    async def send(self, to: str, body: str) -> SentMessage: ...

    async def fetch(self, sid: str) -> SentMessage: ...

    async def find_sent(self, to: str, on: date, body: str) -> SentMessage | None: ...


def _message(payload: dict[str, Any]) -> SentMessage:
    price: Decimal | None = None
    if payload.get("price") not in (None, ""):
        try:
            price = abs(Decimal(str(payload["price"])))
        except InvalidOperation:
            price = None
    segments = payload.get("num_segments")
    return SentMessage(
        sid=str(payload["sid"]),
        to=str(payload.get("to", "")),
        body=str(payload.get("body", "")),
        status=str(payload.get("status", "")),
        num_segments=int(segments) if segments not in (None, "") else None,
        price=price,
        error_code=None if payload.get("error_code") is None else str(payload["error_code"]),
    )


class TwilioSmsGateway:
    """``SmsGateway`` over Twilio's REST API with HTTP Basic auth and form encoding."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        account_sid: str,
        auth_token: str,
        sender: str,
        status_callback_url: str = "",
        timeout_s: float = 10.0,
    ) -> None:
        self._client = client
        self._root = f"{base_url.rstrip('/')}/{API_VERSION}/Accounts/{account_sid}"
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._sender = sender
        self._status_callback_url = status_callback_url
        self._timeout = make_timeout(timeout_s)

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._client.request(
                method, url, auth=self._auth, timeout=self._timeout, **kwargs
            )
        except httpx.TransportError as error:
            raise classify_transport_error(error, "SMS gateway") from error

    async def send(self, to: str, body: str) -> SentMessage:
        form = {"To": to, "From": self._sender, "Body": body}
        if self._status_callback_url:
            form["StatusCallback"] = self._status_callback_url
        response = await self._request("POST", f"{self._root}/Messages.json", data=form)
        if response.status_code in (200, 201):
            return _message(response.json())
        if response.status_code >= 500:
            # A server error after the request arrived may come after the message was
            # accepted (a proxy's 504, a crash mid-request): only a look-up can tell.
            raise AmbiguousError(f"SMS gateway: server error {response.status_code}")
        raise_for_transient_status(response, "SMS gateway")
        raise _permanent(response)

    async def fetch(self, sid: str) -> SentMessage:
        response = await self._request("GET", f"{self._root}/Messages/{sid}.json")
        if response.status_code == 200:
            return _message(response.json())
        raise_for_transient_status(response, "SMS gateway")
        raise _permanent(response)

    async def find_sent(self, to: str, on: date, body: str) -> SentMessage | None:
        """The message with exactly this body sent to ``to`` on day ``on`` (UTC), if any."""
        url: str | None = f"{self._root}/Messages.json"
        params: dict[str, Any] | None = {
            "To": to,
            # Twilio's contract types DateSent as a date-time; the day is its UTC midnight.
            "DateSent": f"{on.isoformat()}T00:00:00Z",
            "PageSize": LOOKUP_PAGE_SIZE,
        }
        for _ in range(LOOKUP_MAX_PAGES):
            if url is None:
                break
            response = await self._request("GET", url, params=params)
            if response.status_code != 200:
                raise_for_transient_status(response, "SMS gateway lookup")
                raise _permanent(response)
            page = response.json()
            for item in page.get("messages", []):
                if item.get("body") == body and item.get("to") == to:
                    return _message(item)
            next_uri = page.get("next_page_uri")
            url = self._absolute(next_uri) if next_uri else None
            params = None
        return None

    def _absolute(self, uri: str) -> str:
        if uri.startswith("http"):
            return uri
        base = self._root.split(f"/{API_VERSION}/", 1)[0]
        return base + uri


def _permanent(response: httpx.Response) -> PermanentError:
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    code = payload.get("code") if isinstance(payload, dict) else None
    reason = PERMANENT_REASONS.get(int(code)) if isinstance(code, int) else None
    if reason is None:
        message = payload.get("message") if isinstance(payload, dict) else None
        reason = f"SMS gateway refused the message: {message or response.status_code}"
    return PermanentError(reason, None if code is None else str(code), response.status_code)


__all__ = [
    "AmbiguousError",
    "PermanentError",
    "SentMessage",
    "SmsGateway",
    "TransientError",
    "TwilioSmsGateway",
]
