"""Every setting Courier reads, in one typed place (environment prefix ``COURIER_``).

Adapters never read the environment: ``courier.wiring`` builds them from a ``Settings``.
Secrets are ``SecretStr`` (never printed) and a missing or placeholder secret fails fast.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from courier.planning import SendingHours

#: Values of ``.env.example`` that must never reach a real gateway.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "replace-me", "xxx", "secret"})


class SettingsError(ValueError):
    """Settings that cannot work (missing or placeholder secrets, bad combinations)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="COURIER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # -- where things live
    ledger_path: Path = Path("data/ledger.duckdb")
    pricing_path: Path = Path("data/pricing.csv")
    reminder_rules_path: Path = Path("data/reminder_rules.yaml")

    # -- invoice source: a file (JSON Lines or CSV) or the ERP's paginated HTTP API
    invoice_source: str = Field(
        default="data/invoices.jsonl",
        description="A .jsonl/.csv path, or an http(s):// base URL of the ERP invoice API",
    )
    invoice_source_token: SecretStr = SecretStr("")

    # -- SMS gateway (Twilio's Messages API; the sandbox speaks the same API)
    sms_base_url: str = "http://127.0.0.1:8701"
    sms_account_sid: str = ""
    sms_auth_token: SecretStr = SecretStr("")
    sms_sender: str = "Courier"
    receipts_public_url: str = Field(
        default="",
        description="Public base URL of `courier receiver` (status callbacks, STOP); empty = poll",
    )

    # -- document store (returns the link the buyer opens)
    docstore_url: str = "http://127.0.0.1:8702"
    docstore_token: SecretStr = SecretStr("")
    document_link_days: int = Field(default=90, ge=1, le=3650)

    # -- documents
    xml_profile_overrides: dict[str, Literal["etda", "ubl"]] = Field(
        default_factory=dict,
        description='e-invoice XML profile by seller country, e.g. {"SG": "ubl"}; '
        "default: Thai sellers ETDA e-Tax, others UBL 2.1 / EN 16931",
    )
    render_workers: int = Field(default=2, ge=1, le=64)
    render_batch_size: int = Field(default=25, ge=1, le=1000)

    # -- behaviour
    batch_size: int = Field(default=200, ge=1, le=5000)
    http_timeout_s: float = Field(default=10.0, gt=0)
    sms_concurrency: int = Field(default=8, ge=1, le=256)
    sms_language: Literal["auto", "th", "en"] = "auto"
    sms_rate_per_s: float | None = Field(
        default=None, gt=0, description="Most SMS per second to the gateway; empty = no pacing"
    )
    sending_hours: str = Field(
        default="09:00-21:00",
        description="Texts go out only in these hours of the recipient's local time; 'off'",
    )
    run_budget: Decimal | None = Field(
        default=None, ge=0, description="Most one run may spend on SMS; a run over it sends none"
    )
    receipt_poll_after_s: float = Field(default=60.0, ge=0)

    # -- e-mail (SMTP relay); off while smtp_host is empty
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_timeout_s: float = Field(default=30.0, gt=0)
    email_from: str = Field(
        default="", description='The From of every e-mail, e.g. "Siam Trading <billing@...>"'
    )
    email_message_id_domain: str = Field(
        default="", description="The domain of each Message-ID; empty: the From's domain"
    )
    email_max_attachment_mb: float = Field(default=7.0, gt=0, le=50)
    email_price: Decimal = Field(
        default=Decimal("0"), ge=0, description="What one e-mail costs (the SMS currency)"
    )
    email_concurrency: int = Field(default=4, ge=1, le=64)
    email_language: Literal["auto", "th", "en"] = "auto"
    email_sending_hours: str = Field(
        default="off",
        description="E-mails go out only in these hours of the buyer's local time; 'off'",
    )
    etax_email_sellers: str = Field(
        default="",
        description="Tax ids of the Thai sellers in ETDA's e-Tax Invoice by e-mail scheme "
        "(comma-separated): their e-mails go From the seller, with a copy to the time stamp",
    )
    etax_timestamp_address: str = Field(
        default="csemail@etax.teda.th", description="ETDA's time-stamp mailbox"
    )
    inbound_email_token: SecretStr = Field(
        default=SecretStr(""),
        description="Bearer token of the inbound-mail webhook (bounces, time stamps); "
        "empty: the webhook is off",
    )

    @field_validator("sms_rate_per_s", "run_budget", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("sending_hours", "email_sending_hours")
    @classmethod
    def _valid_hours(cls, value: str) -> str:
        SendingHours.parse(value)
        return value

    @property
    def hours(self) -> SendingHours | None:
        return SendingHours.parse(self.sending_hours)

    @property
    def email_hours(self) -> SendingHours | None:
        return SendingHours.parse(self.email_sending_hours)

    @property
    def etax_sellers(self) -> frozenset[str]:
        """The tax ids of the sellers in the e-Tax by e-mail scheme."""
        return frozenset(t.strip() for t in self.etax_email_sellers.split(",") if t.strip())

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> Settings:
        missing = [
            name
            for name, value in (
                ("COURIER_SMS_ACCOUNT_SID", self.sms_account_sid),
                ("COURIER_SMS_AUTH_TOKEN", self.sms_auth_token.get_secret_value()),
                ("COURIER_DOCSTORE_TOKEN", self.docstore_token.get_secret_value()),
            )
            if value.strip().lower() in PLACEHOLDER_SECRETS
        ]
        smtp_password = self.smtp_password.get_secret_value().strip().lower()
        if self.smtp_host and self.smtp_username and smtp_password in PLACEHOLDER_SECRETS:
            missing.append("COURIER_SMTP_PASSWORD")
        if self.smtp_host and not self.email_from.strip():
            missing.append("COURIER_EMAIL_FROM (the sender of every e-mail)")
        if missing:
            raise SettingsError(
                "missing or placeholder secret(s): "
                + ", ".join(missing)
                + " (set them in the environment or .env; see .env.example)"
            )
        return self

    @property
    def email_enabled(self) -> bool:
        return bool(self.smtp_host.strip())

    @property
    def source_is_http(self) -> bool:
        return self.invoice_source.startswith(("http://", "https://"))


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment (and ``.env``), with explicit overrides for tests."""
    return Settings(**overrides)  # type: ignore[arg-type]


class DashboardSettings(BaseSettings):
    """What the "Send to Buyer" dashboard itself reads (prefix ``COURIER_``).

    Kept apart from ``Settings`` so the page, and its sign-in, never depend on the sending
    secrets: the table and analytics work with the ledger alone; sending needs ``Settings``.

    Sign-in is OpenID Connect through Streamlit's ``st.login`` and is on when
    ``COURIER_OIDC_CLIENT_ID`` is set: then ``COURIER_OIDC_CLIENT_SECRET``,
    ``COURIER_OIDC_SERVER_METADATA_URL`` (the provider's ``.well-known/openid-configuration``),
    ``COURIER_OIDC_REDIRECT_URI`` (``https://<dashboard>/oauth2callback``) and
    ``COURIER_OIDC_COOKIE_SECRET`` are required too. ``COURIER_SENDERS`` (comma-separated
    e-mail addresses) lists who may edit numbers and send; signed-in users not on it only
    look. Without OIDC the page is open to this machine only (loopback).
    """

    model_config = SettingsConfigDict(
        env_prefix="COURIER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    ledger_path: Path = Path("data/ledger.duckdb")
    oidc_client_id: str = ""
    oidc_client_secret: SecretStr = SecretStr("")
    oidc_server_metadata_url: str = ""
    oidc_redirect_uri: str = ""
    oidc_cookie_secret: SecretStr = SecretStr("")
    senders: str = Field(
        default="", description="Comma-separated e-mail addresses allowed to edit and send"
    )

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_client_id.strip())

    @property
    def sender_allow_list(self) -> frozenset[str]:
        return frozenset(e.strip().lower() for e in self.senders.split(",") if e.strip())

    @model_validator(mode="after")
    def _complete_oidc(self) -> DashboardSettings:
        if not self.oidc_enabled:
            return self
        missing = [
            name
            for name, value in (
                ("COURIER_OIDC_CLIENT_SECRET", self.oidc_client_secret.get_secret_value()),
                ("COURIER_OIDC_SERVER_METADATA_URL", self.oidc_server_metadata_url),
                ("COURIER_OIDC_REDIRECT_URI", self.oidc_redirect_uri),
                ("COURIER_OIDC_COOKIE_SECRET", self.oidc_cookie_secret.get_secret_value()),
            )
            if value.strip().lower() in PLACEHOLDER_SECRETS
        ]
        if missing:
            raise SettingsError(
                "COURIER_OIDC_CLIENT_ID is set, so sign-in needs " + ", ".join(missing)
            )
        for name, url in (
            ("COURIER_OIDC_SERVER_METADATA_URL", self.oidc_server_metadata_url),
            ("COURIER_OIDC_REDIRECT_URI", self.oidc_redirect_uri),
        ):
            if not url.startswith(("https://", "http://")):
                raise SettingsError(f"{name} must be an absolute http(s) URL")
        if not self.oidc_redirect_uri.rstrip("/").endswith("/oauth2callback"):
            raise SettingsError("COURIER_OIDC_REDIRECT_URI must end with /oauth2callback")
        return self

    def streamlit_auth_section(self) -> dict[str, str]:
        """The ``[auth]`` section ``st.login`` reads (Streamlit's secrets format)."""
        return {
            "redirect_uri": self.oidc_redirect_uri,
            "cookie_secret": self.oidc_cookie_secret.get_secret_value(),
            "client_id": self.oidc_client_id,
            "client_secret": self.oidc_client_secret.get_secret_value(),
            "server_metadata_url": self.oidc_server_metadata_url,
        }


def load_dashboard_settings(**overrides: object) -> DashboardSettings:
    return DashboardSettings(**overrides)  # type: ignore[arg-type]
