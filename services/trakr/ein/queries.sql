-- ein's named queries (loaded by trakr.db.load_queries). Bulk rows travel by binary COPY
-- (copy_records_to_table); these statements only lock, read hashes and apply temp tables.

-- name: find_snapshot
-- The university whose last ingested snapshot has this sha256 (the identical-scrape short cut).
SELECT id, topic_name FROM university WHERE snapshot_sha256 = $1 LIMIT 1;

-- name: touch_scraped_at
-- A skipped (identical) scrape still proves the data was current at its scrape time.
UPDATE university SET scraped_at = $2
WHERE id = $1 AND (scraped_at IS NULL OR scraped_at < $2);

-- name: lock_university
-- Serialises ingests of one university across ein replicas; what the cache is checked against,
-- and the scrape time of the stored snapshot (an older scrape is never applied over it).
SELECT id, content_hash, ein_generation, scraped_at FROM university WHERE topic_name = $1 FOR UPDATE;

-- name: insert_university
-- A university seen for the first time; ON CONFLICT covers a replica inserting it concurrently.
INSERT INTO university (topic_name, topic_id, name, abbr)
VALUES ($1, $2, $3, $4)
ON CONFLICT (topic_name) DO NOTHING
RETURNING id;

-- name: update_university
-- The university row itself, the snapshot hash, scrape time and a new cache generation.
UPDATE university SET
    name = $2, abbr = $3, home_page = $4, registration_page = $5, metadata = $6::jsonb,
    content_hash = $7, snapshot_sha256 = $8, scraped_at = $9, ein_generation = $10,
    updated_at = CASE WHEN content_hash IS DISTINCT FROM $7 THEN now() ELSE updated_at END
WHERE id = $1;

-- name: finish_university
-- Only the snapshot hash, scrape time and generation (the university's own fields are unchanged).
UPDATE university SET snapshot_sha256 = $2, scraped_at = $3, ein_generation = $4 WHERE id = $1;

-- name: delete_semesters
-- The semester list is small and rewritten whole when the university row changes.
DELETE FROM semester WHERE university_id = $1;

-- name: delete_registrations
-- Same for the registration periods.
DELETE FROM registration WHERE university_id = $1;

-- name: stored_subjects
-- Stored subject hashes of a university (cache miss: first ingest in this process or stale).
SELECT id, topic_name, content_hash FROM subject WHERE university_id = $1;

-- name: stored_courses
-- Stored course hashes with their subject.
SELECT c.id, c.topic_name, c.content_hash, c.subject_id
FROM course c JOIN subject s ON s.id = c.subject_id
WHERE s.university_id = $1;

-- name: stored_sections
-- Stored section hashes with their course.
SELECT id, topic_name, content_hash, course_id FROM section WHERE university_id = $1;

-- name: allocate_ids
-- Ids for the rows about to be COPYed, so children can reference parents without RETURNING.
SELECT
    array(SELECT nextval('subject_id_seq') FROM generate_series(1, $1::int)) AS subject_ids,
    array(SELECT nextval('course_id_seq') FROM generate_series(1, $2::int)) AS course_ids,
    array(SELECT nextval('section_id_seq') FROM generate_series(1, $3::int)) AS section_ids;

-- name: create_temp_tables
-- Per-session staging tables for changed rows; emptied at every commit.
CREATE TEMP TABLE IF NOT EXISTS ein_subject (LIKE subject INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS ein_course (LIKE course INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS ein_section (LIKE section INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;

-- name: apply_subjects
-- Changed subjects, one statement.
UPDATE subject s SET
    number = t.number, name = t.name, season = t.season, year = t.year,
    metadata = t.metadata, content_hash = t.content_hash, updated_at = now()
FROM ein_subject t WHERE s.id = t.id;

-- name: apply_courses
-- Changed courses, one statement.
UPDATE course c SET
    code = t.code, number = t.number, name = t.name, synopsis = t.synopsis, credits = t.credits,
    metadata = t.metadata, content_hash = t.content_hash, updated_at = now()
FROM ein_course t WHERE c.id = t.id;

-- name: apply_sections
-- Changed sections in ONE statement: the statement-level outbox trigger then writes one
-- notification per section whose status really changed, and nothing for the others. The
-- self-join reads the old status (the statement's snapshot) to count the status changes.
WITH applied AS (
    UPDATE section s SET
        index = t.index, number = t.number, status = t.status, credits = t.credits,
        books = t.books, metadata = t.metadata, content_hash = t.content_hash, updated_at = now()
    FROM ein_section t JOIN section o ON o.id = t.id
    WHERE s.id = t.id
    RETURNING o.status IS DISTINCT FROM t.status AS status_changed
)
SELECT count(*) FILTER (WHERE status_changed) FROM applied;

-- name: delete_subjects
-- Vanished subjects (their courses, sections, meetings and instructors cascade).
DELETE FROM subject WHERE id = ANY($1::bigint[]);

-- name: delete_courses
-- Vanished courses (their sections cascade).
DELETE FROM course WHERE id = ANY($1::bigint[]);

-- name: delete_sections
-- Vanished sections (meetings and instructors cascade; notifications keep their history).
DELETE FROM section WHERE id = ANY($1::bigint[]);

-- name: delete_children
-- Meetings and instructors of rewritten sections, in one round trip.
WITH m AS (DELETE FROM meeting WHERE section_id = ANY($1::bigint[]) RETURNING 1),
     i AS (DELETE FROM instructor WHERE section_id = ANY($1::bigint[]) RETURNING 1)
SELECT (SELECT count(*) FROM m) AS meetings, (SELECT count(*) FROM i) AS instructors;
