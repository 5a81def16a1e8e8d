-- spike's reads. Each catalogue query returns its whole answer as ONE json document already in
-- the protobuf JSON mapping (lowerCamelCase keys, int64 as strings, enums by name, every field
-- present), so a JSON response is that text spliced into the envelope with no Python work, and a
-- protobuf response is one json.loads and one message constructor call (C code in upb). A nested
-- course costs one round trip instead of one per level (measured: docs/spike.md).
-- No row (or a NULL document) means the topic does not exist.
--
-- Objects are built by row_to_json/json_agg over subquery rows whose column names are the JSON
-- keys, not by json_build_object: that function looks up the output function of every key and
-- every value on every row, and the course query cost ~25 % more PostgreSQL CPU that way
-- (docs/spike.md). encoding.protobuf_query derives each query's protobuf variant by renaming the
-- quoted "camelCase" names, so every renamed key must be written as a quoted identifier.
-- Meetings and instructors are aggregated from a subquery sorted by ordinal (the index order):
-- ordinal is not part of the output, and a plain aggregate over a sorted subquery keeps its order.

-- name: universities
-- Every university, without subjects or semesters.
SELECT coalesce(json_agg(u ORDER BY u."topicName"), '[]')::text AS doc
FROM (
    SELECT u.name, u.abbr, u.home_page AS "homePage", u.registration_page AS "registrationPage",
           '[]'::json AS "availableSemesters", '[]'::json AS registrations, u.metadata,
           '[]'::json AS subjects, u.topic_name AS "topicName", u.topic_id::text AS "topicId"
    FROM university u
) u;

-- name: university
-- One university with its semesters and registration periods (no subjects).
SELECT row_to_json(d)::text AS doc
FROM (
    SELECT u.name, u.abbr, u.home_page AS "homePage", u.registration_page AS "registrationPage",
        coalesce((
            SELECT json_agg(s ORDER BY s.year, s.season)
            FROM (SELECT upper(s.season) AS season, s.year
                  FROM semester s WHERE s.university_id = u.id) s), '[]') AS "availableSemesters",
        coalesce((
            SELECT json_agg(r)
            FROM (SELECT r.period,
                         to_char(r.period_date AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                             AS "periodDate"
                  FROM registration r WHERE r.university_id = u.id
                  ORDER BY r.period_date NULLS LAST, r.period) r), '[]') AS registrations,
        u.metadata, '[]'::json AS subjects, u.topic_name AS "topicName",
        u.topic_id::text AS "topicId"
    FROM university u
    WHERE u.topic_name = $1
) d;

-- name: university_subjects
-- A university's subjects in one semester (season compared case-insensitively); NULL: no such university.
SELECT coalesce((
    SELECT json_agg(s ORDER BY s.number, s."topicName")
    FROM (SELECT s.number, s.name, upper(s.season) AS season, s.year, '[]'::json AS courses,
                 s.metadata, s.topic_name AS "topicName", s.topic_id::text AS "topicId"
          FROM subject s
          WHERE s.university_id = u.id AND s.year = $3 AND lower(s.season) = lower($2)) s
), '[]')::text AS doc
FROM university u
WHERE u.topic_name = $1;

-- name: subject
-- One subject, without its courses.
SELECT row_to_json(d)::text AS doc
FROM (
    SELECT s.number, s.name, upper(s.season) AS season, s.year, '[]'::json AS courses, s.metadata,
           s.topic_name AS "topicName", s.topic_id::text AS "topicId"
    FROM subject s
    WHERE s.topic_name = $1
) d;

-- name: subject_courses
-- A subject's courses, without sections (the course route has those); NULL: no such subject.
SELECT coalesce((
    SELECT json_agg(c ORDER BY c.number, c.code)
    FROM (SELECT c.code, c.number, c.name, c.synopsis, c.credits, '[]'::json AS sections,
                 c.metadata, c.topic_name AS "topicName", c.topic_id::text AS "topicId"
          FROM course c
          WHERE c.subject_id = s.id) c
), '[]')::text AS doc
FROM subject s
WHERE s.topic_name = $1;

-- name: course
-- One course with its sections, each with meetings and instructors, in one round trip.
SELECT row_to_json(d)::text AS doc
FROM (
    SELECT c.code, c.number, c.name, c.synopsis, c.credits,
        coalesce((
            SELECT json_agg(x ORDER BY x.number, x.index)
            FROM (
                SELECT x.index, x.number, x.status, x.credits,
                    coalesce((
                        SELECT json_agg(m)
                        FROM (SELECT m.day, m.start_time AS "startTime", m.end_time AS "endTime",
                                     m.room, m.building, m.campus, m.class_type AS "classType",
                                     m.metadata
                              FROM meeting m WHERE m.section_id = x.id
                              ORDER BY m.ordinal) m), '[]') AS meetings,
                    coalesce((
                        SELECT json_agg(i)
                        FROM (SELECT i.name FROM instructor i WHERE i.section_id = x.id
                              ORDER BY i.ordinal) i), '[]') AS instructors,
                    x.books, x.metadata, x.topic_name AS "topicName", x.topic_id::text AS "topicId"
                FROM section x
                WHERE x.course_id = c.id) x), '[]') AS sections,
        c.metadata, c.topic_name AS "topicName", c.topic_id::text AS "topicId"
    FROM course c
    WHERE c.topic_name = $1
) d;

-- name: section
-- One section with meetings and instructors.
SELECT row_to_json(d)::text AS doc
FROM (
    SELECT x.index, x.number, x.status, x.credits,
        coalesce((
            SELECT json_agg(m)
            FROM (SELECT m.day, m.start_time AS "startTime", m.end_time AS "endTime", m.room,
                         m.building, m.campus, m.class_type AS "classType", m.metadata
                  FROM meeting m WHERE m.section_id = x.id
                  ORDER BY m.ordinal) m), '[]') AS meetings,
        coalesce((
            SELECT json_agg(i)
            FROM (SELECT i.name FROM instructor i WHERE i.section_id = x.id
                  ORDER BY i.ordinal) i), '[]') AS instructors,
        x.books, x.metadata, x.topic_name AS "topicName", x.topic_id::text AS "topicId"
    FROM section x
    WHERE x.topic_name = $1
) d;

-- name: section_history
-- A section's current status (NULL if it left the catalogue), its status changes since $2, and
-- the status in force at $2 (from the last change before it, else the first change's old status).
SELECT
    (SELECT x.status FROM section x WHERE x.topic_name = $1) AS current_status,
    (SELECT n.new_status FROM notification n
      WHERE n.topic_name = $1 AND n.created_at < $2
      ORDER BY n.created_at DESC, n.id DESC LIMIT 1) AS status_before,
    (SELECT count(*) FROM notification n WHERE n.topic_name = $1) AS total_changes,
    coalesce((
        SELECT json_agg(json_build_object(
            'old_status', n.old_status, 'status', n.new_status,
            'at', extract(epoch FROM n.created_at)::float8
        ) ORDER BY n.created_at, n.id)
        FROM notification n
        WHERE n.topic_name = $1 AND n.created_at >= $2), '[]')::text AS changes;

-- name: course_subscribers
-- Subscribers per section of a course (sections without any count 0); no rows: no such course.
SELECT x.topic_name, x.number, x.index, count(s.device_id) AS subscribers
FROM course c
JOIN section x ON x.course_id = c.id
LEFT JOIN subscription s ON s.topic_name = x.topic_name AND s.is_subscribed
WHERE c.topic_name = $1
GROUP BY x.id
ORDER BY x.number, x.index;

-- name: course_exists
-- 1 when the course exists (hotness of a course without sections is an empty list, not a 404).
SELECT 1 FROM course WHERE topic_name = $1;

-- name: topic_exists
-- 1 when any catalogue entity has this topic name (a subscription must name a real topic).
SELECT 1 WHERE EXISTS (SELECT 1 FROM section WHERE topic_name = $1)
            OR EXISTS (SELECT 1 FROM course WHERE topic_name = $1)
            OR EXISTS (SELECT 1 FROM subject WHERE topic_name = $1)
            OR EXISTS (SELECT 1 FROM university WHERE topic_name = $1);

-- name: subscription_upsert
-- Record a device's (un)subscription; repeating the same report changes nothing (updated_at kept).
INSERT INTO subscription AS s (device_id, topic_name, is_subscribed)
VALUES ($1, $2, $3)
ON CONFLICT (device_id, topic_name) DO UPDATE
SET is_subscribed = EXCLUDED.is_subscribed,
    updated_at = CASE WHEN s.is_subscribed IS DISTINCT FROM EXCLUDED.is_subscribed
                      THEN now() ELSE s.updated_at END
RETURNING device_id, topic_name, is_subscribed, updated_at, (xmax = 0) AS created;

-- name: ping
-- Readiness probe.
SELECT 1;
