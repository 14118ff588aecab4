-- Migration 4: what an e-mail needs beyond migration 3 to be built again exactly (its
-- sender and its copy), and the mail that comes back (bounces, ETDA time stamps).

ALTER TABLE messages ADD COLUMN IF NOT EXISTS from_address VARCHAR;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS cc_address VARCHAR;   -- e.g. ETDA's time-stamp mailbox

-- Every message received back (a bounce, a stamped invoice), once: a mail provider may
-- deliver the same one twice.
CREATE TABLE IF NOT EXISTS inbound_emails (
    message_id       VARCHAR PRIMARY KEY,      -- its own Message-ID (or a digest of its bytes)
    kind             VARCHAR NOT NULL,          -- bounce | timestamp | other
    answers          VARCHAR,                   -- the Message-ID of ours it is about
    invoice_number   VARCHAR,
    sender           VARCHAR,
    subject          VARCHAR,
    size_bytes       BIGINT NOT NULL,
    received_at      TIMESTAMPTZ NOT NULL
);

-- ETDA's time-stamp service answered: the stamped invoice came back.
CREATE TABLE IF NOT EXISTS etax_timestamps (
    invoice_number   VARCHAR NOT NULL,
    message_id       VARCHAR NOT NULL,          -- of the time-stamp service's reply
    answers          VARCHAR NOT NULL,          -- our e-mail's Message-ID
    stamped_at       TIMESTAMPTZ,               -- as the reply says (its Date)
    attachment_name  VARCHAR,
    attachment_sha256 VARCHAR,
    received_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (message_id)
);
