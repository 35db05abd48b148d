-- Version 2: one key index on entries instead of two. SaveSnapshot holds the
-- stream's row lock and checks that added entries are not current itself,
-- which halves the index maintenance of a large first snapshot. Index files
-- are gzip already: store them without another compression attempt.
DROP INDEX entries_current;
DROP INDEX entries_key;
CREATE INDEX entries_key ON entries (stream_id, name, version, checksum);
ALTER TABLE snapshot_raw ALTER COLUMN raw SET STORAGE EXTERNAL;
