"""The "Analytics" tab: delivery funnel, failures by reason, charges over time, run history."""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from courier import screens


def _csv(frame: pd.DataFrame, name: str, key: str) -> None:
    st.download_button(
        "Download CSV",
        screens.to_csv(frame),
        file_name=f"{name}.csv",
        mime="text/csv",
        key=f"csv_{key}",
        on_click="ignore",  # a download changes nothing: no need to redraw the charts
    )


def render(status: pd.DataFrame, charges: pd.DataFrame, runs: pd.DataFrame) -> None:
    st.caption(
        "Every invoice in the ledger (the sidebar filters apply to the Send to Buyer table)."
    )
    st.subheader("Delivery funnel")
    funnel = screens.delivery_funnel(status)
    st.bar_chart(funnel, x="stage", y="invoices", sort=False, x_label="", y_label="Invoices")
    st.dataframe(funnel.rename(columns={"stage": "Stage", "invoices": "Invoices"}), hide_index=True)
    _csv(funnel, "delivery_funnel", "funnel")

    st.subheader("Failures by reason")
    failures = screens.failures_by_reason(status)
    if failures.empty:
        st.caption("No invoice is held back.")
    else:
        st.bar_chart(
            failures,
            x="reason",
            y="invoices",
            horizontal=True,
            sort="-invoices",
            x_label="Invoices",
            y_label="",
        )
        st.dataframe(
            failures.rename(columns={"reason": "Reason", "invoices": "Invoices"}), hide_index=True
        )
        _csv(failures, "failures_by_reason", "failures")

    st.subheader("Charges")
    if charges.empty:
        st.caption("No SMS has been charged yet.")
    else:
        by_label = {"Day": "day", "Month": "month", "Seller": "seller", "Country": "country"}
        choice = st.segmented_control("Charges by", list(by_label), default="Day", key="charges_by")
        by = by_label.get(choice or "Day", "day")
        table = screens.charges_by(charges, by)  # type: ignore[arg-type]
        chart = screens.as_chart(table, by)
        if by in ("day", "month"):
            st.line_chart(chart, y_label="Charges")
        else:
            st.bar_chart(chart, y_label="Charges")
        st.dataframe(
            table.assign(amount=table["amount"].map(lambda v: f"{v:f}")).rename(
                columns={
                    by: by.capitalize(),
                    "currency": "Currency",
                    "messages": "Messages",
                    "segments": "Segments",
                    "amount": "Amount",
                }
            ),
            hide_index=True,
        )
        _csv(table, f"charges_by_{by}", "charges")

    st.subheader("Run history")
    history = screens.run_history(runs, screens.prefect_ui_base(os.environ))
    if history.empty:
        st.caption("No runs yet.")
    else:
        st.dataframe(
            history,
            hide_index=True,
            column_config={
                "Prefect": st.column_config.LinkColumn("Prefect", display_text="Open run"),
            },
        )
        _csv(history, "runs", "runs")
