-- spike's reads. Each catalogue query returns its whole answer as ONE json document already in
-- the protobuf JSON mapping (lowerCamelCase keys, int64 as strings, enums by name, every field
-- present), so a JSON response is that text spliced into the envelope with no Python work, and a
-- protobuf response is one json.loads and one message constructor call (C code in upb). A nested
-- course costs one round trip instead of one per level (measured: docs/spike.md).
-- No row (or a NULL document) means the topic does not exist.

-- name: universities
-- Every university, without subjects or semesters.
SELECT coalesce(json_agg(json_build_object(
    'name', u.name, 'abbr', u.abbr, 'homePage', u.home_page,
    'registrationPage', u.registration_page, 'metadata', u.metadata,
    'topicName', u.topic_name, 'topicId', u.topic_id::text,
    'availableSemesters', '[]'::json, 'registrations', '[]'::json, 'subjects', '[]'::json
) ORDER BY u.topic_name), '[]')::text AS doc
FROM university u;

-- name: university
-- One university with its semesters and registration periods (no subjects).
SELECT json_build_object(
    'name', u.name, 'abbr', u.abbr, 'homePage', u.home_page,
    'registrationPage', u.registration_page, 'metadata', u.metadata,
    'topicName', u.topic_name, 'topicId', u.topic_id::text, 'subjects', '[]'::json,
    'availableSemesters', coalesce((
        SELECT json_agg(json_build_object('season', upper(s.season), 'year', s.year)
                        ORDER BY s.year, s.season)
        FROM semester s WHERE s.university_id = u.id), '[]'),
    'registrations', coalesce((
        SELECT json_agg(json_build_object(
            'period', r.period,
            'periodDate', to_char(r.period_date AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
        ) ORDER BY r.period_date NULLS LAST, r.period)
        FROM registration r WHERE r.university_id = u.id), '[]')
)::text AS doc
FROM university u
WHERE u.topic_name = $1;

-- name: university_subjects
-- A university's subjects in one semester (season compared case-insensitively); NULL: no such university.
SELECT coalesce((
    SELECT json_agg(json_build_object(
        'number', s.number, 'name', s.name, 'season', upper(s.season), 'year', s.year,
        'metadata', s.metadata, 'topicName', s.topic_name, 'topicId', s.topic_id::text, 'courses', '[]'::json
    ) ORDER BY s.number, s.topic_name)
    FROM subject s
    WHERE s.university_id = u.id AND s.year = $3 AND lower(s.season) = lower($2)), '[]')::text AS doc
FROM university u
WHERE u.topic_name = $1;

-- name: subject
-- One subject, without its courses.
SELECT json_build_object(
    'number', s.number, 'name', s.name, 'season', upper(s.season), 'year', s.year,
    'metadata', s.metadata, 'topicName', s.topic_name, 'topicId', s.topic_id::text, 'courses', '[]'::json
)::text AS doc
FROM subject s
WHERE s.topic_name = $1;

-- name: subject_courses
-- A subject's courses, without sections (the course route has those); NULL: no such subject.
SELECT coalesce((
    SELECT json_agg(json_build_object(
        'code', c.code, 'number', c.number, 'name', c.name, 'synopsis', c.synopsis,
        'credits', c.credits, 'metadata', c.metadata, 'topicName', c.topic_name, 'topicId', c.topic_id::text,
        'sections', '[]'::json
    ) ORDER BY c.number, c.code)
    FROM course c
    WHERE c.subject_id = s.id), '[]')::text AS doc
FROM subject s
WHERE s.topic_name = $1;

-- name: course
-- One course with its sections, each with meetings and instructors, in one round trip.
SELECT json_build_object(
    'code', c.code, 'number', c.number, 'name', c.name, 'synopsis', c.synopsis,
    'credits', c.credits, 'metadata', c.metadata, 'topicName', c.topic_name, 'topicId', c.topic_id::text,
    'sections', coalesce((
        SELECT json_agg(json_build_object(
            'index', x.index, 'number', x.number, 'status', x.status, 'credits', x.credits,
            'books', x.books, 'metadata', x.metadata, 'topicName', x.topic_name, 'topicId', x.topic_id::text,
            'meetings', coalesce((
                SELECT json_agg(json_build_object(
                    'day', m.day, 'startTime', m.start_time, 'endTime', m.end_time, 'room', m.room,
                    'building', m.building, 'campus', m.campus, 'classType', m.class_type,
                    'metadata', m.metadata
                ) ORDER BY m.ordinal)
                FROM meeting m WHERE m.section_id = x.id), '[]'),
            'instructors', coalesce((
                SELECT json_agg(json_build_object('name', i.name) ORDER BY i.ordinal)
                FROM instructor i WHERE i.section_id = x.id), '[]')
        ) ORDER BY x.number, x.index)
        FROM section x WHERE x.course_id = c.id), '[]')
)::text AS doc
FROM course c
WHERE c.topic_name = $1;

-- name: section
-- One section with meetings and instructors.
SELECT json_build_object(
    'index', x.index, 'number', x.number, 'status', x.status, 'credits', x.credits,
    'books', x.books, 'metadata', x.metadata, 'topicName', x.topic_name, 'topicId', x.topic_id::text,
    'meetings', coalesce((
        SELECT json_agg(json_build_object(
            'day', m.day, 'startTime', m.start_time, 'endTime', m.end_time, 'room', m.room,
            'building', m.building, 'campus', m.campus, 'classType', m.class_type,
            'metadata', m.metadata
        ) ORDER BY m.ordinal)
        FROM meeting m WHERE m.section_id = x.id), '[]'),
    'instructors', coalesce((
        SELECT json_agg(json_build_object('name', i.name) ORDER BY i.ordinal)
        FROM instructor i WHERE i.section_id = x.id), '[]')
)::text AS doc
FROM section x
WHERE x.topic_name = $1;

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
