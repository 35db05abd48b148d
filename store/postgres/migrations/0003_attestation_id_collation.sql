-- Version 3: attestation ids compare bytewise (as in SQLite and in page
-- tokens), so ORDER BY created_at, id can walk attestations_time.
ALTER TABLE attestations ALTER COLUMN id TYPE TEXT COLLATE "C";
