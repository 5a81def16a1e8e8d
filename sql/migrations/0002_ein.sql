-- ein: a generation token on each university, replaced by every ingest that commits.
--
-- ein keeps the stored content hashes of a university in memory between scrapes (re-reading
-- 100k hashes per scrape would cost more than the diff). The cache is used only while the
-- university row still carries the generation ein wrote with it; anything else that rewrites
-- the catalogue must set ein_generation to NULL (or a fresh uuid) so ein re-reads the hashes.
-- A random uuid (not a counter) so a cache can never match a different database.
ALTER TABLE university ADD COLUMN ein_generation uuid;
