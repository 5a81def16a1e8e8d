-- trakr schema: the catalogue (university → subject → course → section → meeting/instructor),
-- the notification outbox with its trigger, deliveries and subscriptions.
--
-- Every catalogue row carries its topic_name (unique) and topic_id (trakr.topics), and a
-- content_hash that ein compares with the scrape to find what changed without re-reading rows.

CREATE TABLE university (
    id                bigserial PRIMARY KEY,
    topic_name        text NOT NULL UNIQUE,
    topic_id          bigint NOT NULL UNIQUE,
    name              text NOT NULL,
    abbr              text NOT NULL,
    home_page         text NOT NULL DEFAULT '',
    registration_page text NOT NULL DEFAULT '',
    metadata          jsonb NOT NULL DEFAULT '[]',
    content_hash      bytea,
    snapshot_sha256   bytea,              -- hash of the last ingested snapshot (ein's short cut)
    scraped_at        timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE semester (
    university_id bigint NOT NULL REFERENCES university (id) ON DELETE CASCADE,
    season        text NOT NULL,
    year          integer NOT NULL,
    PRIMARY KEY (university_id, year, season)
);

CREATE TABLE registration (
    university_id bigint NOT NULL REFERENCES university (id) ON DELETE CASCADE,
    period        text NOT NULL,
    period_date   timestamptz,
    PRIMARY KEY (university_id, period)
);

CREATE TABLE subject (
    id            bigserial PRIMARY KEY,
    university_id bigint NOT NULL REFERENCES university (id) ON DELETE CASCADE,
    topic_name    text NOT NULL UNIQUE,
    topic_id      bigint NOT NULL UNIQUE,
    number        text NOT NULL,
    name          text NOT NULL,
    season        text NOT NULL,
    year          integer NOT NULL,
    metadata      jsonb NOT NULL DEFAULT '[]',
    content_hash  bytea NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subject_university_semester ON subject (university_id, year, season);

CREATE TABLE course (
    id            bigserial PRIMARY KEY,
    subject_id    bigint NOT NULL REFERENCES subject (id) ON DELETE CASCADE,
    topic_name    text NOT NULL UNIQUE,
    topic_id      bigint NOT NULL UNIQUE,
    code          text NOT NULL,
    number        text NOT NULL,
    name          text NOT NULL,
    synopsis      text NOT NULL DEFAULT '',
    credits       text NOT NULL DEFAULT '',
    metadata      jsonb NOT NULL DEFAULT '[]',
    content_hash  bytea NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX course_subject ON course (subject_id);

CREATE TABLE section (
    id            bigserial PRIMARY KEY,
    course_id     bigint NOT NULL REFERENCES course (id) ON DELETE CASCADE,
    university_id bigint NOT NULL REFERENCES university (id) ON DELETE CASCADE,
    topic_name    text NOT NULL UNIQUE,
    topic_id      bigint NOT NULL UNIQUE,
    index         text NOT NULL,
    number        text NOT NULL,
    status        text NOT NULL CHECK (status IN ('OPEN', 'CLOSED', 'WAITLIST', 'CANCELLED')),
    credits       text NOT NULL DEFAULT '',
    books         jsonb NOT NULL DEFAULT '[]',
    metadata      jsonb NOT NULL DEFAULT '[]',
    content_hash  bytea NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX section_course ON section (course_id);
CREATE INDEX section_university ON section (university_id);

CREATE TABLE meeting (
    section_id  bigint NOT NULL REFERENCES section (id) ON DELETE CASCADE,
    ordinal     integer NOT NULL,
    day         text NOT NULL DEFAULT '',
    start_time  text NOT NULL DEFAULT '',
    end_time    text NOT NULL DEFAULT '',
    room        text NOT NULL DEFAULT '',
    building    text NOT NULL DEFAULT '',
    campus      text NOT NULL DEFAULT '',
    class_type  text NOT NULL DEFAULT '',
    metadata    jsonb NOT NULL DEFAULT '[]',
    PRIMARY KEY (section_id, ordinal)
);

CREATE TABLE instructor (
    section_id  bigint NOT NULL REFERENCES section (id) ON DELETE CASCADE,
    ordinal     integer NOT NULL,
    name        text NOT NULL,
    PRIMARY KEY (section_id, ordinal)
);

-- The outbox: one row per real section status change, written by the trigger below in the
-- same transaction as the change. Deliberately no foreign key to section: a section that later
-- vanishes from the catalogue keeps its history.
CREATE TABLE notification (
    id             bigserial PRIMARY KEY,
    topic_name     text NOT NULL,
    topic_id       bigint NOT NULL,
    university     text NOT NULL,                       -- the university's topic name
    section_id     bigint,
    old_status     text,
    new_status     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    state          text NOT NULL DEFAULT 'new'
                   CHECK (state IN ('new', 'held', 'queued', 'collapsed', 'sent', 'failed')),
    collapsed_into bigint REFERENCES notification (id),
    queued_at      timestamptz
);
CREATE INDEX notification_pending ON notification (id) WHERE state IN ('new', 'held');
CREATE INDEX notification_topic ON notification (topic_name, id);
CREATE INDEX notification_created ON notification (created_at);

-- What FCM said about each notification: the proof of what was pushed.
CREATE TABLE delivery (
    notification_id bigint PRIMARY KEY REFERENCES notification (id),
    state           text NOT NULL CHECK (state IN ('sent', 'failed')),
    fcm_message_id  text,
    error_code      text,
    attempts        integer NOT NULL DEFAULT 1,
    sent_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX delivery_sent_at ON delivery (sent_at);

-- Current subscription of each device to each topic, as the apps report it.
CREATE TABLE subscription (
    device_id     text NOT NULL,
    topic_name    text NOT NULL,
    is_subscribed boolean NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, topic_name)
);
CREATE INDEX subscription_topic ON subscription (topic_name) WHERE is_subscribed;

-- One statement-level trigger per UPDATE on section: every row whose status really changed
-- becomes one outbox row and one pg_notify, set-based, so an ingest that flips 1,000 sections
-- costs one INSERT … SELECT, not 1,000 trigger calls. (Transition tables cannot be combined
-- with `UPDATE OF status`, hence the IS DISTINCT FROM join.) Inserting a new section is not an
-- event: nobody can have subscribed to a topic that did not exist.
CREATE FUNCTION section_status_outbox() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed_count bigint;
BEGIN
    WITH changed AS (
        INSERT INTO notification (topic_name, topic_id, university, section_id, old_status, new_status)
        SELECT n.topic_name, n.topic_id, u.topic_name, n.id, o.status, n.status
        FROM new_rows n
        JOIN old_rows o ON o.id = n.id
        JOIN university u ON u.id = n.university_id
        WHERE o.status IS DISTINCT FROM n.status
        ORDER BY n.id
        RETURNING id, topic_name, new_status, university
    )
    SELECT count(pg_notify('status_change', json_build_object(
        'notification_id', id, 'topic_name', topic_name, 'status', new_status, 'university', university
    )::text))
    INTO STRICT changed_count FROM changed;
    RETURN NULL;
END;
$$;

CREATE TRIGGER section_status_change
    AFTER UPDATE ON section
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION section_status_outbox();
