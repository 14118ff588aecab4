"""What a finished send says to the person who pressed: both channels' outcomes in one
notice (``courier.actions.send_sms`` results; an e-mail's keys are prefixed ``email_``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

from courier.channels import EMAIL, SMS

NoticeKind = Literal["success", "warning", "info", "error"]

#: Outcome keys a person should hear about, and how the notice words them.
_TROUBLE = (("failed", "failed"), ("unknown", "undecided"), ("retry", "to retry"))


def _messages(count: int, channel: str) -> str:
    if channel == SMS:
        return f"{count} SMS"
    return f"{count} e-mail{'s' if count != 1 else ''}"


def merge_send_results(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Several send results as one (the groups of one "Send All"): counts and charges
    summed, held and not-sendable invoices together, the first refusal kept."""
    total: dict[str, Any] = {"charged": "0", "held": {}, "not_sendable": []}
    for part in parts:
        for key, value in part.items():
            if key == "charged":
                total["charged"] = str(Decimal(total["charged"]) + Decimal(str(value)))
            elif key == "held":
                total["held"].update(value)
            elif key == "not_sendable":
                total["not_sendable"].extend(value)
            elif isinstance(value, int) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + value
            else:
                total.setdefault(key, value)
    return total


def describe_send(
    result: Mapping[str, Any], currency: str, channels: Sequence[str] = (SMS,)
) -> tuple[NoticeKind, str]:
    """(notice kind, text) for a finished send by ``channels``: what went by each
    channel and what it cost, then anything that did not go, and why."""
    if result.get("refused"):
        return "error", f"Nothing was sent: {result['refused']}"
    chosen = [c for c in (SMS, EMAIL) if c in channels]
    prefix = {SMS: "", EMAIL: "email_"}
    accepted = {c: int(result.get(prefix[c] + "accepted", 0)) for c in chosen}
    sent = ", ".join(f"{_messages(n, c)} sent" for c, n in accepted.items())
    parts = [f"{sent}, charged {result.get('charged', '0')} {currency}."]
    repeated = int(result.get("already_requested", 0))
    if repeated:
        parts.append(f"{repeated} already sent by this request (sent once).")
    trouble = False
    for channel in chosen:
        for key, label in _TROUBLE:
            count = int(result.get(prefix[channel] + key, 0))
            if count:
                parts.append(f"{_messages(count, channel)} {label}.")
                trouble = trouble or key == "failed"
    for key, count in sorted(result.items()):
        # Refused by the claim's checks (STOP, a bounce) between planning and sending.
        if key.startswith("skipped_") and key.endswith("_at_send") and count:
            why = key.removeprefix("skipped_").removesuffix("_at_send").replace("_", " ")
            parts.append(f"{count} not sent at the last check ({why}).")
    held = result.get("held") or {}
    if held:
        reasons = sorted(set(held.values()))
        parts.append(f"{len(held)} held back ({'; '.join(reasons)}).")
    not_sendable = result.get("not_sendable") or []
    if not_sendable:
        missing = (
            {
                (SMS,): "no mobile number",
                (EMAIL,): "no usable e-mail address",
                (SMS, EMAIL): "neither a mobile number nor a usable e-mail address",
            }[tuple(chosen)]
            if chosen
            else "no channel"
        )
        parts.append(
            f"{len(not_sendable)} not sendable ({missing} or no stored document): "
            + ", ".join(not_sendable[:10])
            + ("…" if len(not_sendable) > 10 else "")
        )
    any_sent = sum(accepted.values()) > 0
    kind: NoticeKind = "success" if any_sent and not (trouble or not_sendable) else "warning"
    if not any_sent and repeated:
        kind = "info"
    return kind, " ".join(parts)
