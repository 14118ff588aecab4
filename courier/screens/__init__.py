"""What the "Send to Buyer" dashboard shows, as pure functions over DataFrames and values.

No Streamlit here: the dashboard (``dashboard/``) only lays these results out, so every
rule a person relies on — which rows a filter keeps, how a status reads, what "Send All"
will send and what it will cost — is unit-tested without a browser.

* ``table``: ``apply_filters`` (vectorised; fine on 100k rows) and ``present_table`` (only
  the rows actually displayed are formatted); one ``send_cell`` for the SMS and the
  e-mail column.
* ``row_actions``: ``check_phone`` (the pipeline's own rules) and ``email_action`` (may
  the selected invoice be e-mailed, and why not).
* ``send_all``: ``preview_send_all`` — per channel, who is sent to, who is skipped and
  why, SMS encoding, segments and cost per country, e-mails at their price — built with
  the very intent code the sender uses, so the charges after sending equal the preview.
* ``outcomes``: ``describe_send`` — the notice after a send, both channels.
* ``analytics``: ``delivery_funnel``, ``failures_by_reason``, ``charges_by``,
  ``run_history``.
"""

from courier.screens._format import DISPLAY_TZ
from courier.screens.analytics import (
    FUNNEL_STAGES,
    ChargeGrouping,
    as_chart,
    charges_by,
    delivery_funnel,
    failures_by_reason,
    prefect_ui_base,
    run_history,
    to_csv,
)
from courier.screens.outcomes import NoticeKind, describe_send, merge_send_results
from courier.screens.row_actions import (
    EMAIL_NOT_CONFIGURED,
    EmailAction,
    PhoneCheck,
    check_phone,
    email_action,
)
from courier.screens.send_all import (
    CHANNEL_CHOICES,
    CHANNEL_NAMES,
    SKIP_LABELS,
    SendAllPreview,
    SkipKey,
    TemplateCheck,
    char_names,
    check_template,
    highlight_ucs2,
    preview_send_all,
)
from courier.screens.table import (
    EMAIL_STATUS_LABELS,
    MAX_TABLE_ROWS,
    SMS_STATUS_LABELS,
    TABLE_COLUMNS,
    FilterOptions,
    Filters,
    apply_filters,
    filter_options,
    present_table,
    send_cell,
    showing_note,
)

__all__ = [
    "CHANNEL_CHOICES",
    "CHANNEL_NAMES",
    "DISPLAY_TZ",
    "EMAIL_NOT_CONFIGURED",
    "EMAIL_STATUS_LABELS",
    "FUNNEL_STAGES",
    "MAX_TABLE_ROWS",
    "SKIP_LABELS",
    "SMS_STATUS_LABELS",
    "TABLE_COLUMNS",
    "ChargeGrouping",
    "EmailAction",
    "FilterOptions",
    "Filters",
    "NoticeKind",
    "PhoneCheck",
    "SendAllPreview",
    "SkipKey",
    "TemplateCheck",
    "apply_filters",
    "as_chart",
    "char_names",
    "charges_by",
    "check_phone",
    "check_template",
    "delivery_funnel",
    "describe_send",
    "email_action",
    "failures_by_reason",
    "filter_options",
    "highlight_ucs2",
    "merge_send_results",
    "prefect_ui_base",
    "present_table",
    "preview_send_all",
    "run_history",
    "send_cell",
    "showing_note",
    "to_csv",
]
