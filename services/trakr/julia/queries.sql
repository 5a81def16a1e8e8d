-- julia's queries (psycopg, named parameters).

-- name: lock_topics
-- Lock the oldest pending row of up to %(limit)s topics that have work due (a new row, or a
-- held row whose window has closed); that row is the topic's mutex (see service.py). Rows
-- locked by another julia are skipped, not waited for. Each step reads an index from its start
-- and stops early, so a batch does not slow down as the backlog grows (a full GROUP BY over
-- the pending rows per batch made a catch-up quadratic).
WITH due AS (
    (SELECT topic_name FROM notification WHERE state = 'new' ORDER BY id LIMIT %(limit)s)
    UNION
    (SELECT topic_name FROM notification
     WHERE state = 'held' AND window_ends_at <= clock_timestamp()
     ORDER BY window_ends_at LIMIT %(limit)s)
), anchor AS MATERIALIZED (
    SELECT (SELECT min(p.id) FROM notification p
            WHERE p.topic_name = due.topic_name AND p.state IN ('new', 'held')) AS id
    FROM due
)
SELECT n.topic_name
FROM anchor
JOIN notification n ON n.id = anchor.id
WHERE n.state IN ('new', 'held')
ORDER BY n.id
LIMIT %(limit)s
FOR UPDATE OF n SKIP LOCKED

-- name: pending_rows
-- Every pending row of the locked topics, oldest first, with the names the message needs
-- (LEFT JOINs: a section may have left the catalogue since) and the database's clock. Locked,
-- so that hermes, which may see a row in the stream before this transaction commits, waits for
-- the commit before it records the delivery (and is not overwritten by apply_decisions).
SELECT n.id, n.topic_name, n.university, n.old_status, n.new_status, n.created_at, n.state,
       n.window_ends_at, s.number AS section_number, s.index AS section_index,
       c.name AS course_name, c.number AS course_number, sub.name AS subject_name,
       sub.number AS subject_number, statement_timestamp() AS db_now
FROM notification n
LEFT JOIN section s ON s.id = n.section_id
LEFT JOIN course c ON c.id = s.course_id
LEFT JOIN subject sub ON sub.id = c.subject_id
WHERE n.topic_name = ANY(%(topics)s::text[])
  AND n.state IN ('new', 'held')
ORDER BY n.id
FOR UPDATE OF n

-- name: last_sent
-- The latest forwarded row of each topic: what its subscribers last heard, and its window.
SELECT t.topic_name, l.id, l.new_status, l.window_ends_at
FROM unnest(%(topics)s::text[]) AS t (topic_name)
CROSS JOIN LATERAL (
    SELECT n.id, n.new_status, n.window_ends_at
    FROM notification n
    WHERE n.topic_name = t.topic_name
      AND n.state IN ('queued', 'sent', 'failed')
    ORDER BY n.id DESC
    LIMIT 1
) AS l

-- name: apply_decisions
-- Record the decisions of one batch in one statement.
UPDATE notification AS n
SET state = d.state,
    window_ends_at = d.window_ends_at,
    collapsed_into = d.collapsed_into,
    queued_at = CASE WHEN d.state = 'queued' THEN clock_timestamp() ELSE n.queued_at END
FROM unnest(%(ids)s::bigint[], %(states)s::text[], %(window_ends)s::timestamptz[],
            %(collapsed_into)s::bigint[]) AS d (id, state, window_ends_at, collapsed_into)
WHERE n.id = d.id
  AND n.state IN ('new', 'held')

-- name: held_status
-- How many rows are held, and seconds until the first of them is due (NULL when none).
SELECT count(*) AS held,
       EXTRACT(EPOCH FROM min(window_ends_at) - clock_timestamp())::float8 AS next_due_seconds
FROM notification
WHERE state = 'held'
