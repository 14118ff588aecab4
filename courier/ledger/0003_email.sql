-- Migration 3: the e-mail channel beside SMS (one outbox, two channels).

-- The buyer's e-mail address as the ERP gave it, and as Courier judged it (like the phone).
ALTER TABLE invoices ADD COLUMN IF NOT EXISTS email_raw VARCHAR DEFAULT '';
ALTER TABLE invoices ADD COLUMN IF NOT EXISTS buyer_email VARCHAR;            -- normalised; NULL unless ok
ALTER TABLE invoices ADD COLUMN IF NOT EXISTS email_status VARCHAR DEFAULT 'missing';  -- ok | invalid | missing
ALTER TABLE invoices ADD COLUMN IF NOT EXISTS email_reason VARCHAR DEFAULT 'No e-mail address';
ALTER TABLE invoices ADD COLUMN IF NOT EXISTS email_masked VARCHAR DEFAULT '';

-- An e-mail intent has an address, a subject, its parts and its own Message-ID instead of
-- a number: enough to build the very same message again.
ALTER TABLE messages ALTER COLUMN to_e164 DROP NOT NULL;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS to_address VARCHAR;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS subject VARCHAR;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS message_id VARCHAR;             -- RFC 5322, stable per intent
ALTER TABLE messages ADD COLUMN IF NOT EXISTS body_html VARCHAR;              -- the HTML part (body: the plain one)
ALTER TABLE messages ADD COLUMN IF NOT EXISTS attachment_url VARCHAR;         -- the stored PDF attached at send time

-- A bounce (delivery status notification) stops further e-mail to that address.
CREATE TABLE IF NOT EXISTS email_bounces (
    address          VARCHAR NOT NULL,
    message_id       VARCHAR,                   -- the Message-ID it answers, when it says
    invoice_number   VARCHAR,
    action           VARCHAR NOT NULL,          -- failed (permanent) | delayed
    status_code      VARCHAR,                   -- e.g. 5.1.1
    diagnostic       VARCHAR,
    received_at      TIMESTAMPTZ NOT NULL
);

-- Which channel a buyer gets (sms, email or both); none recorded: by what the invoice has.
CREATE TABLE IF NOT EXISTS buyer_channels (
    buyer_key        VARCHAR PRIMARY KEY,
    channel          VARCHAR NOT NULL,          -- sms | email | both
    set_by           VARCHAR NOT NULL,
    set_at           TIMESTAMPTZ NOT NULL
);
