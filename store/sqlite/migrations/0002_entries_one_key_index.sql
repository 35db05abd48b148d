-- Version 2: one key index on entries instead of two. SaveSnapshot checks
-- that added entries are not current itself (it holds the write lock), which
-- halves the index maintenance of a large first snapshot.
DROP INDEX entries_current;
DROP INDEX entries_key;
CREATE INDEX entries_key ON entries (stream_id, name, version, checksum);
