-- Migration 1: the ledger as first released (idempotent: ledgers made before numbered
-- migrations already have these tables, and get only what they lack).
CREATE TABLE IF NOT EXISTS invoices (
    invoice_number   VARCHAR PRIMARY KEY,
    type_code        VARCHAR NOT NULL,
    seller_name      VARCHAR NOT NULL,
    seller_tax_id    VARCHAR,
    seller_country   VARCHAR NOT NULL,
    buyer_name       VARCHAR NOT NULL,
    buyer_country    VARCHAR NOT NULL,
    issued_at        TIMESTAMPTZ NOT NULL,
    due_date         DATE NOT NULL,
    currency         VARCHAR NOT NULL,
    vat_rate         DECIMAL(6, 3) NOT NULL,
    line_total       DECIMAL(18, 2) NOT NULL,
    vat_amount       DECIMAL(18, 2) NOT NULL,
    grand_total      DECIMAL(18, 2) NOT NULL,
    payment_status   VARCHAR NOT NULL,
    phone_raw        VARCHAR,
    phone_e164       VARCHAR,
    phone_etda       VARCHAR,
    phone_type       VARCHAR,
    phone_status     VARCHAR NOT NULL,
    phone_reason     VARCHAR NOT NULL,
    phone_masked     VARCHAR NOT NULL,
    record_json      VARCHAR NOT NULL,
    source           VARCHAR NOT NULL,
    pulled_at        TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);

-- Source records that could not become invoices: kept, never silently dropped.
CREATE TABLE IF NOT EXISTS invoice_rejects (
    source           VARCHAR NOT NULL,
    record_key       VARCHAR NOT NULL,
    field            VARCHAR NOT NULL,
    problem          VARCHAR NOT NULL,
    raw_record       VARCHAR NOT NULL,
    seen_at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, record_key, field, problem)
);

CREATE TABLE IF NOT EXISTS documents (
    invoice_number   VARCHAR NOT NULL,
    kind             VARCHAR NOT NULL,          -- pdf | xml
    status           VARCHAR NOT NULL,  -- uploaded | upload_failed | render_failed | not_applicable
    url              VARCHAR,
    sha256           VARCHAR,
    size_bytes       BIGINT,
    error            VARCHAR,
    attempts         INTEGER NOT NULL DEFAULT 0,
    uploaded_at      TIMESTAMPTZ,
    expires_at       TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (invoice_number, kind)
);

-- The outbox: one row per intent to send, written before the gateway is called.
CREATE TABLE IF NOT EXISTS messages (
    idempotency_key     VARCHAR PRIMARY KEY,    -- <invoice>:<purpose>
    invoice_number      VARCHAR NOT NULL,
    purpose             VARCHAR NOT NULL,       -- on_issue | manual:<id> | reminder:<rule>
    requested_by        VARCHAR NOT NULL,
    channel             VARCHAR NOT NULL DEFAULT 'sms',
    to_e164             VARCHAR NOT NULL,
    destination_country VARCHAR NOT NULL,
    body                VARCHAR NOT NULL,
    encoding            VARCHAR NOT NULL,
    segments            INTEGER NOT NULL,
    unit_price          DECIMAL(18, 6) NOT NULL, -- quoted when the intent was made
    amount              DECIMAL(18, 6) NOT NULL,
    currency            VARCHAR NOT NULL,
    status              VARCHAR NOT NULL,       -- pending | accepted | failed | retry | unknown
    provider_sid        VARCHAR,
    provider_status     VARCHAR,
    error_code          VARCHAR,
    error_reason        VARCHAR,
    attempts            INTEGER NOT NULL DEFAULT 0,
    run_id              VARCHAR,
    created_at          TIMESTAMPTZ NOT NULL,
    sent_at             TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ NOT NULL
);

-- One row per SMS the gateway accepted: segments x the agreed price for the country.
CREATE TABLE IF NOT EXISTS sms_charges (
    idempotency_key     VARCHAR PRIMARY KEY,
    invoice_number      VARCHAR NOT NULL,
    provider_sid        VARCHAR NOT NULL,
    destination_country VARCHAR NOT NULL,
    segments            INTEGER NOT NULL,
    unit_price          DECIMAL(18, 6) NOT NULL,
    amount              DECIMAL(18, 6) NOT NULL,
    currency            VARCHAR NOT NULL,
    provider_price      DECIMAL(18, 6),
    run_id              VARCHAR,
    charged_at          TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS phone_edits (
    invoice_number   VARCHAR NOT NULL,
    old_raw          VARCHAR,
    new_raw          VARCHAR NOT NULL,
    edited_by        VARCHAR NOT NULL,
    edited_at        TIMESTAMPTZ NOT NULL
);

-- Numbers that asked not to be texted (STOP), checked before every send.
CREATE TABLE IF NOT EXISTS opt_outs (
    phone_e164       VARCHAR PRIMARY KEY,
    source           VARCHAR NOT NULL,          -- inbound_stop | gateway_21610 | manual
    opted_out_at     TIMESTAMPTZ NOT NULL
);

-- Every delivery receipt as it arrived (status callback or polling), for audit.
CREATE TABLE IF NOT EXISTS delivery_events (
    provider_sid     VARCHAR NOT NULL,
    status           VARCHAR NOT NULL,
    error_code       VARCHAR,
    provider_price   DECIMAL(18, 6),
    source           VARCHAR NOT NULL,          -- callback | poll
    received_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS runs (
    run_id           VARCHAR PRIMARY KEY,
    flow             VARCHAR NOT NULL,
    started_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ,
    summary_json     VARCHAR
);

-- Columns added after the first release (kept idempotent for existing ledgers).
ALTER TABLE messages ADD COLUMN IF NOT EXISTS provider_error_code VARCHAR;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS provider_status_at TIMESTAMPTZ;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS delivered_at TIMESTAMPTZ;

