-- Queries of `trakr status` and `trakr demo` (read-only).

-- name: last_scrapes
-- When each university was last ingested.
SELECT topic_name, name, scraped_at, (SELECT count(*) FROM section s WHERE s.university_id = u.id) AS sections
FROM university u
ORDER BY topic_name;

-- name: deliveries_since
-- Deliveries recorded since %(since)s, by state.
SELECT state, count(*) FROM delivery WHERE sent_at >= %(since)s GROUP BY state;

-- name: fcm_errors_since
-- Failed deliveries since %(since)s, by FCM error code.
SELECT coalesce(error_code, 'unknown'), count(*)
FROM delivery
WHERE state = 'failed' AND sent_at >= %(since)s
GROUP BY 1
ORDER BY 2 DESC;

-- name: outbox_by_state
-- Outbox rows by state.
SELECT state, count(*) FROM notification GROUP BY state ORDER BY state;

-- name: notifications
-- Every outbox row with its delivery (the demo's summary and drain check).
SELECT n.id, n.university, n.state, n.created_at, d.state AS delivery_state, d.sent_at
FROM notification n
LEFT JOIN delivery d ON d.notification_id = n.id
ORDER BY n.id;
