-- name: delivery_status
-- For each notification id: does its outbox row exist, and what delivery is recorded for it.
SELECT u.id AS notification_id, n.id IS NOT NULL AS known, d.state AS delivery_state
FROM unnest($1::bigint[]) AS u(id)
LEFT JOIN notification n ON n.id = u.id
LEFT JOIN delivery d ON d.notification_id = u.id;

-- name: record_outcomes
-- Write the delivery rows of a batch (first writer wins) and move their outbox rows to sent/failed.
WITH outcome AS (
    SELECT *
    FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::integer[], $6::timestamptz[])
         AS o(notification_id, state, fcm_message_id, error_code, attempts, sent_at)
), inserted AS (
    INSERT INTO delivery (notification_id, state, fcm_message_id, error_code, attempts, sent_at)
    SELECT o.notification_id, o.state, o.fcm_message_id, o.error_code, o.attempts, o.sent_at
    FROM outcome o
    JOIN notification n ON n.id = o.notification_id
    ON CONFLICT (notification_id) DO NOTHING
    RETURNING notification_id, state
), updated AS (
    UPDATE notification n SET state = i.state
    FROM inserted i
    WHERE n.id = i.notification_id AND n.state IS DISTINCT FROM i.state
    RETURNING n.id
)
SELECT (SELECT count(*) FROM inserted) AS inserted, (SELECT count(*) FROM updated) AS updated;
