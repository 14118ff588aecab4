-- The views analysts and the dashboard read; replaced after every migration.

-- What is still owed: nothing once paid (the ERP's word decides: a write-off or a
-- rounding difference leaves no debt), else the total less what was paid, never below 0.
CREATE OR REPLACE MACRO amount_due(payment_status, grand_total, amount_paid) AS
    (CASE WHEN payment_status = 'paid' THEN 0
          ELSE greatest(grand_total - coalesce(amount_paid, 0), 0) END)::DECIMAL(18, 2);

CREATE OR REPLACE VIEW charges AS
SELECT c.charged_at, c.invoice_number, i.seller_name, c.destination_country, c.segments,
       c.unit_price, c.amount, c.currency, c.provider_price, c.provider_sid,
       c.idempotency_key, m.purpose, m.requested_by, c.run_id, m.channel
FROM sms_charges c
JOIN messages m USING (idempotency_key)
LEFT JOIN invoices i ON i.invoice_number = c.invoice_number;

-- Agreed charge versus what the provider reported, per message and per day.
CREATE OR REPLACE VIEW charge_reconciliation AS
SELECT c.charged_at, c.invoice_number, c.provider_sid, c.destination_country, c.segments,
       c.amount AS agreed_amount, c.provider_price, c.currency,
       c.provider_price - c.amount AS difference,
       CASE WHEN c.provider_price IS NULL AND m.provider_status = 'failed'
                THEN 'not_charged_by_provider'
            WHEN c.provider_price IS NULL THEN 'awaiting_provider_price'
            WHEN c.provider_price = c.amount THEN 'matches'
            ELSE 'differs' END AS state
FROM sms_charges c
LEFT JOIN messages m USING (idempotency_key)
WHERE coalesce(m.channel, 'sms') = 'sms';  -- a mail relay reports no price

CREATE OR REPLACE VIEW charge_reconciliation_daily AS
SELECT CAST(charged_at AS DATE) AS day, currency, count(*) AS messages,
       sum(agreed_amount) AS agreed_total,
       sum(provider_price) AS provider_total,
       count(*) FILTER (WHERE provider_price IS NULL) AS awaiting_provider_price,
       coalesce(sum(provider_price), 0) - sum(agreed_amount)
           FILTER (WHERE provider_price IS NOT NULL) AS difference,
       count(*) FILTER (WHERE state = 'differs') AS messages_differing
FROM charge_reconciliation
GROUP BY ALL
ORDER BY day;

-- The pause in force for each invoice (its own, or its buyer's), if any: the newest.
CREATE OR REPLACE VIEW reminder_pause_in_force AS
SELECT i.invoice_number,
       arg_max(p.scope, p.paused_at) AS pause_scope,
       arg_max(p.reason, p.paused_at) AS pause_reason,
       arg_max(p.paused_by, p.paused_at) AS paused_by,
       max(p.paused_at) AS paused_at
FROM invoices i
JOIN reminder_pauses p
  ON p.resumed_at IS NULL
 AND ((p.scope = 'invoice' AND p.target = i.invoice_number)
      OR (p.scope = 'buyer' AND p.target = i.buyer_key))
GROUP BY i.invoice_number;

-- Addresses a permanent bounce came back from: no more e-mail goes to them.
CREATE OR REPLACE VIEW bounced_addresses AS
SELECT lower(address) AS address,
       max(received_at) AS bounced_at,
       arg_max(status_code, received_at) AS status_code,
       arg_max(diagnostic, received_at) AS diagnostic
FROM email_bounces
WHERE action = 'failed'
GROUP BY ALL;

CREATE OR REPLACE VIEW invoice_status AS
WITH docs AS (
    SELECT invoice_number,
           count(*) FILTER (WHERE status IN ('uploaded', 'not_applicable')) AS uploaded,
           any_value(url) FILTER (WHERE kind = 'pdf' AND status = 'uploaded') AS pdf_url,
           any_value(url) FILTER (WHERE kind = 'xml' AND status = 'uploaded') AS xml_url,
           string_agg(kind || ': ' || error, '; ')
               FILTER (WHERE status NOT IN ('uploaded', 'not_applicable')) AS document_error
    FROM documents GROUP BY invoice_number
), sent AS (
    SELECT invoice_number,
           count(*) FILTER (WHERE status = 'accepted') AS sends,
           max(sent_at) FILTER (WHERE status = 'accepted') AS last_sent_at,
           arg_max(status, updated_at) AS last_status,
           arg_max(error_reason, updated_at) AS last_error,
           arg_max(provider_status, updated_at) FILTER (WHERE status = 'accepted')
               AS last_provider_status,
           arg_max(provider_error_code, updated_at) FILTER (WHERE status = 'accepted')
               AS last_provider_error
    FROM messages WHERE channel = 'sms' GROUP BY invoice_number
), emailed AS (
    SELECT invoice_number,
           count(*) FILTER (WHERE status = 'accepted') AS sends,
           max(sent_at) FILTER (WHERE status = 'accepted') AS last_sent_at,
           arg_max(status, updated_at) AS last_status,
           arg_max(error_reason, updated_at) AS last_error,
           arg_max(provider_status, updated_at) FILTER (WHERE status = 'accepted')
               AS last_provider_status,
           arg_max(to_address, updated_at) AS last_address
    FROM messages WHERE channel = 'email' GROUP BY invoice_number
), stamped AS (
    SELECT invoice_number, max(stamped_at) AS etax_stamped_at
    FROM etax_timestamps GROUP BY invoice_number
), money AS (
    SELECT invoice_number, sum(amount) AS total_charges, any_value(currency) AS charge_currency
    FROM sms_charges GROUP BY invoice_number
), reminded AS (
    SELECT invoice_number,
           count(*) FILTER (WHERE status = 'accepted') AS reminders_sent,
           max(sent_at) FILTER (WHERE status = 'accepted') AS last_reminder_at
    FROM messages WHERE purpose LIKE 'reminder:%' GROUP BY invoice_number
)
SELECT i.invoice_number,
       i.issued_at,
       i.due_date,
       i.seller_name,
       i.buyer_name,
       i.buyer_country,
       i.grand_total,
       i.currency,
       i.phone_masked,
       i.phone_status,
       i.phone_reason,
       CASE WHEN coalesce(d.uploaded, 0) = 2 THEN 'uploaded'
            WHEN d.invoice_number IS NULL THEN 'not_uploaded'
            ELSE 'failed' END AS document_status,
       d.document_error,
       d.pdf_url,
       d.xml_url,
       CASE WHEN coalesce(s.sends, 0) > 0 THEN 'sent'
            WHEN s.last_status IS NOT NULL THEN s.last_status
            WHEN i.phone_status <> 'ok' THEN 'not_sent'
            ELSE 'waiting' END AS sms_status,
       CASE WHEN coalesce(s.sends, 0) > 0 THEN ''
            WHEN s.last_error IS NOT NULL THEN s.last_error
            WHEN i.phone_status <> 'ok' THEN i.phone_reason
            WHEN coalesce(d.uploaded, 0) < 2 THEN 'Document not uploaded yet'
            ELSE '' END AS reason,
       s.last_provider_status AS delivery_status,
       s.last_provider_error AS delivery_error_code,
       s.last_sent_at,
       coalesce(s.sends, 0) AS sends,
       coalesce(m.total_charges, 0)::DECIMAL(18, 6) AS total_charges,
       m.charge_currency,
       i.payment_status,
       i.amount_paid,
       amount_due(i.payment_status, i.grand_total, i.amount_paid) AS amount_due,
       coalesce(r.reminders_sent, 0) AS reminders_sent,
       r.last_reminder_at,
       (p.invoice_number IS NOT NULL) AS reminders_paused,
       i.email_masked,
       i.email_status,
       i.email_reason,
       CASE WHEN e.last_provider_status = 'bounced' THEN 'bounced'
            WHEN coalesce(e.sends, 0) > 0 THEN 'sent'
            WHEN e.last_status IS NOT NULL THEN e.last_status
            WHEN i.email_status <> 'ok' THEN 'not_sent'
            WHEN b.address IS NOT NULL THEN 'bounced'
            ELSE 'waiting' END AS email_send_status,
       CASE WHEN e.last_provider_status = 'bounced' OR (coalesce(e.sends, 0) = 0
                                                        AND b.address IS NOT NULL)
                THEN 'Bounced' || coalesce(' (' || b.status_code || ')', '')
            WHEN coalesce(e.sends, 0) > 0 THEN ''
            WHEN e.last_error IS NOT NULL THEN e.last_error
            WHEN i.email_status <> 'ok' THEN i.email_reason
            WHEN coalesce(d.uploaded, 0) < 2 THEN 'Document not uploaded yet'
            ELSE '' END AS email_send_reason,
       e.last_sent_at AS last_emailed_at,
       coalesce(e.sends, 0) AS email_sends,
       t.etax_stamped_at
FROM invoices i
LEFT JOIN docs d USING (invoice_number)
LEFT JOIN sent s USING (invoice_number)
LEFT JOIN emailed e USING (invoice_number)
LEFT JOIN stamped t USING (invoice_number)
LEFT JOIN bounced_addresses b ON b.address = lower(i.buyer_email)
LEFT JOIN money m USING (invoice_number)
LEFT JOIN reminded r USING (invoice_number)
LEFT JOIN reminder_pause_in_force p USING (invoice_number);

-- Every reminder step of every invoice that went out, was tried, or was skipped (and why).
CREATE OR REPLACE VIEW reminder_history AS
SELECT m.invoice_number,
       split_part(m.purpose, ':', 2) AS rule_id,
       split_part(m.purpose, ':', 3) AS step_id,
       m.channel,
       CASE WHEN m.status = 'accepted' THEN 'sent' ELSE m.status END AS status,
       coalesce(m.error_reason, '') AS reason,
       m.requested_by,
       m.created_at AS at,
       m.sent_at,
       m.provider_status AS delivery_status,
       c.amount AS charge,
       c.currency AS charge_currency,
       m.run_id
FROM messages m
LEFT JOIN sms_charges c USING (idempotency_key)
WHERE m.purpose LIKE 'reminder:%'
UNION ALL
SELECT s.invoice_number, s.rule_id, s.step_id, NULL AS channel, 'skipped' AS status,
       s.reason, NULL AS requested_by, s.recorded_at AS at, NULL AS sent_at,
       NULL AS delivery_status, NULL AS charge, NULL AS charge_currency, s.run_id
FROM reminder_skips s
WHERE NOT EXISTS (
    SELECT 1 FROM messages m
    WHERE m.invoice_number = s.invoice_number
      AND m.purpose = 'reminder:' || s.rule_id || ':' || s.step_id
);

-- What reminder rules read of each invoice (the dashboard's "next reminder" and the planner).
CREATE OR REPLACE VIEW invoice_reminders AS
SELECT i.invoice_number, i.type_code, i.seller_name, i.seller_country, i.seller_timezone,
       i.buyer_name, i.buyer_country, i.buyer_key, i.issued_at, i.due_date,
       coalesce(i.erp_created_at, i.issued_at) AS created_at, i.paid_at,
       i.currency, i.grand_total, i.payment_status, i.amount_paid,
       amount_due(i.payment_status, i.grand_total, i.amount_paid) AS amount_due,
       (p.invoice_number IS NOT NULL) AS paused,
       p.pause_scope, p.pause_reason, p.paused_by, p.paused_at
FROM invoices i
LEFT JOIN reminder_pause_in_force p USING (invoice_number);

-- Every message of both channels, one row each: what went where, when, and how it ended.
CREATE OR REPLACE VIEW deliveries AS
SELECT m.invoice_number,
       m.channel,
       m.purpose,
       m.requested_by,
       CASE WHEN m.channel = 'email' THEN m.to_address ELSE m.to_e164 END AS recipient,
       m.cc_address AS copy_to,
       m.subject,
       m.status,
       coalesce(m.error_reason, '') AS reason,
       m.provider_sid AS provider_id,
       m.provider_status AS delivery_status,
       m.created_at,
       m.sent_at,
       m.delivered_at,
       c.amount AS charge,
       c.currency AS charge_currency,
       m.run_id,
       m.idempotency_key
FROM messages m
LEFT JOIN sms_charges c USING (idempotency_key);
