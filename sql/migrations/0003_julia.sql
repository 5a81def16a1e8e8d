-- julia: collapse windows live in the outbox rows so that held state survives a restart.
--
-- window_ends_at: on a forwarded (queued/sent/failed) row, when the collapse window it opened
-- closes (NULL: it opened none, the university's window is 0); on a held row, when julia will
-- resolve it. The partial index serves julia's "which held rows are due" and "next wake-up" queries.
ALTER TABLE notification ADD COLUMN window_ends_at timestamptz;
CREATE INDEX notification_held_due ON notification (window_ends_at) WHERE state = 'held';
-- A topic's pending rows in id order: its oldest one is julia's per-topic lock (lock_topics),
-- and the whole set is read for every batch (pending_rows), without walking the topic's history.
CREATE INDEX notification_topic_pending ON notification (topic_name, id) WHERE state IN ('new', 'held');
