-- ein: meetings and instructors follow their section by a statement-level trigger, not by
-- per-row foreign keys.
--
-- A foreign key checks every inserted child row with its own SPI query that takes a KEY SHARE
-- lock on the parent row. For a first ingest of Rutgers NB (11,680 sections, 16,845 meetings,
-- 9,689 instructors, all into empty tables) those checks were half of the COPY time: 490 ms
-- with them, 265 ms without (bench/ingest.py's COPY floor). The worst was section.university_id:
-- 11,680 locks of one and the same university row.
--
-- What is dropped, and why that is safe:
--   * section.university_id → university: redundant for deletes (a university's subjects,
--     courses and sections already cascade through subject → course → section); the column
--     stays as a denormalised filter that only ein writes, with the university id it holds
--     locked in the same transaction.
--   * meeting.section_id, instructor.section_id → section: only ein writes these rows, always in
--     the transaction that wrote (or kept) the section with that id. Their ON DELETE CASCADE is
--     kept by the trigger below: one set-based DELETE per statement that deletes sections,
--     whichever way they are deleted (ein's DELETE, or a cascade from a course, subject or
--     university).
-- The tree subject → university, course → subject, section → course keeps its foreign keys.
ALTER TABLE section DROP CONSTRAINT section_university_id_fkey;
ALTER TABLE meeting DROP CONSTRAINT meeting_section_id_fkey;
ALTER TABLE instructor DROP CONSTRAINT instructor_section_id_fkey;

CREATE FUNCTION section_delete_children() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM meeting WHERE section_id IN (SELECT id FROM old_rows);
    DELETE FROM instructor WHERE section_id IN (SELECT id FROM old_rows);
    RETURN NULL;
END;
$$;

CREATE TRIGGER section_delete_children
    AFTER DELETE ON section
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION section_delete_children();

-- TRUNCATE bypasses row and statement DELETE triggers; without the foreign keys it would no
-- longer be refused, so a TRUNCATE of section takes its children with it explicitly.
CREATE FUNCTION section_truncate_children() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE meeting, instructor;
    RETURN NULL;
END;
$$;

CREATE TRIGGER section_truncate_children
    AFTER TRUNCATE ON section
    FOR EACH STATEMENT EXECUTE FUNCTION section_truncate_children();
