-- Migration 2: payments kept current, and reminders by rules.

-- What the ERP says about payment, and the facts reminder rules read.
ALTER TABLE invoices ADD COLUMN IF NOT EXISTS amount_paid DECIMAL(18, 2) DEFAULT 0;
ALTER TABLE invoices ADD COLUMN IF NOT EXISTS paid_at TIMESTAMPTZ;           -- became fully paid
ALTER TABLE invoices ADD COLUMN IF NOT EXISTS erp_created_at TIMESTAMPTZ;    -- NULL: issued_at
ALTER TABLE invoices ADD COLUMN IF NOT EXISTS erp_updated_at TIMESTAMPTZ;    -- the ERP's last change
ALTER TABLE invoices ADD COLUMN IF NOT EXISTS seller_timezone VARCHAR DEFAULT '';  -- '' = the country's
ALTER TABLE invoices ADD COLUMN IF NOT EXISTS buyer_key VARCHAR;             -- who "the buyer" is

-- Every change a pull found in a known invoice (payment status, amount paid, due date).
CREATE TABLE IF NOT EXISTS invoice_changes (
    invoice_number   VARCHAR NOT NULL,
    field            VARCHAR NOT NULL,
    old_value        VARCHAR,
    new_value        VARCHAR,
    source           VARCHAR NOT NULL,          -- where the change came from (the pull's source)
    changed_by       VARCHAR NOT NULL,          -- who recorded it (a run, or a person)
    erp_updated_at   TIMESTAMPTZ,               -- when the ERP says it changed
    changed_at       TIMESTAMPTZ NOT NULL       -- when Courier recorded it
);

-- "Stop chasing": a pause of reminders for one invoice or one buyer, audited. A pause is in
-- force while resumed_at is NULL.
CREATE TABLE IF NOT EXISTS reminder_pauses (
    pause_id         VARCHAR PRIMARY KEY,
    scope            VARCHAR NOT NULL,          -- invoice | buyer
    target           VARCHAR NOT NULL,          -- the invoice number, or the buyer key
    target_label     VARCHAR NOT NULL,          -- what a person reads (buyer name, invoice)
    reason           VARCHAR NOT NULL,
    paused_by        VARCHAR NOT NULL,
    paused_at        TIMESTAMPTZ NOT NULL,
    resumed_by       VARCHAR,
    resumed_at       TIMESTAMPTZ,
    resume_reason    VARCHAR
);

-- A reminder step that fell due and was not sent, with why (paid, paused, window passed, ...).
CREATE TABLE IF NOT EXISTS reminder_skips (
    invoice_number   VARCHAR NOT NULL,
    rule_id          VARCHAR NOT NULL,
    step_id          VARCHAR NOT NULL,
    reason_code      VARCHAR NOT NULL,
    reason           VARCHAR NOT NULL,
    due_at           TIMESTAMPTZ,
    run_id           VARCHAR,
    recorded_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (invoice_number, rule_id, step_id)
);
