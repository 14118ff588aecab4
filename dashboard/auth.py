"""Who is looking, and who may edit numbers and send.

* **OIDC** (``COURIER_OIDC_CLIENT_ID`` and friends, see ``courier.settings.DashboardSettings``):
  ``st.login`` guards the whole page; the ``[auth]`` section Streamlit reads is given to it
  from the settings at start-up (a ``[auth]`` in ``.streamlit/secrets.toml`` wins). Only
  addresses on ``COURIER_SENDERS`` may edit and send; everyone signed in may look.
* **Open** (no OIDC): the page serves this machine only — a request from another host
  is refused — and says so ("Open access: local only"). Actions are recorded as
  ``<os user>@localhost``.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Any, Literal

import streamlit as st

from courier.settings import DashboardSettings

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
OPEN_ACCESS_CAPTION = "Open access: local only"


@dataclass(frozen=True)
class Access:
    mode: Literal["oidc", "open"]
    user: str  # recorded as requested_by / edited_by
    can_send: bool
    why_not: str = ""  # shown when can_send is False


def _authlib_available() -> bool:
    from streamlit.auth_util import is_authlib_installed

    return bool(is_authlib_installed())


def _install_auth_section(settings: DashboardSettings) -> None:
    secrets = st.secrets
    if secrets.load_if_toml_exists() and "auth" in secrets:
        return  # the operator's own secrets.toml decides
    section: dict[str, Any] = dict(settings.streamlit_auth_section())
    secrets.merge_programmatic_secrets({"auth": section})


def gate(settings: DashboardSettings) -> Access:
    """Let the visitor in (or stop the script) and say what they may do."""
    if settings.oidc_enabled:
        return _oidc(settings)
    return _open()


def _oidc(settings: DashboardSettings) -> Access:
    if not _authlib_available():
        st.error(
            "Sign-in is configured (COURIER_OIDC_CLIENT_ID) but Streamlit's OIDC support "
            "needs the Authlib package (>= 1.3.2, `streamlit[auth]`), which is not "
            "installed. The page stays closed until it is."
        )
        st.stop()
    _install_auth_section(settings)
    if not st.user.is_logged_in:
        st.title("Send to Buyer")
        st.write("Sign in to see which invoices reached their buyers.")
        st.button("Log in", on_click=st.login, type="primary")
        st.stop()
    email = str(st.user.get("email") or "").strip().lower()
    with st.sidebar:
        st.caption(f"Signed in as {email or st.user.get('name') or 'unknown'}")
        st.button("Log out", on_click=st.logout)
    allowed = settings.sender_allow_list
    if email and email in allowed:
        return Access("oidc", email, True)
    why = (
        "Only people on COURIER_SENDERS may edit numbers and send."
        if allowed
        else "Nobody may send yet: COURIER_SENDERS is empty."
    )
    return Access("oidc", email or "unknown", False, why)


def _open() -> Access:
    address = st.get_option("server.address")
    ip = st.context.ip_address  # None for a loopback client
    remote = ip if isinstance(ip, str) else None  # a server gives text; a test harness not
    if remote is not None or (address and address not in LOOPBACK):
        st.error(
            "This page has no sign-in configured, so it only serves this machine "
            "(run it with --server.address 127.0.0.1), or set COURIER_OIDC_CLIENT_ID and "
            "the other COURIER_OIDC_ settings."
        )
        st.stop()
    st.caption(OPEN_ACCESS_CAPTION)
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "local"
    return Access("open", f"{user}@localhost", True)
