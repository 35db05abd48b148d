-- Version 4: the ledger's package indexes are written in sorted runs.
--
-- Before, every package of a ledger entry went into two secondary indexes
-- (name/version and checksum): two random B-tree inserts, so about two
-- dirty pages per package, written to the WAL at every commit — 100 of an
-- append's 110 pages for 50 packages.
--
-- Now an append writes only its own rows (attestation_packages is keyed by
-- (attestation_seq, idx), so they land together). Rows above the newest
-- run's upto_seq are "pending" and queries read them directly; once enough
-- are pending, one transaction copies them, sorted, into ledger_keys as a
-- new run (Config.IndexBatch). A run is a contiguous key range at the end of
-- the tree, so it is written once, page by page. A query seeks once per run
-- and scans the pending rows.
CREATE TABLE attestation_packages_v4 (
    attestation_seq INTEGER NOT NULL REFERENCES attestations (seq),
    idx             INTEGER NOT NULL,
    name            TEXT    NOT NULL,
    version         TEXT    NOT NULL,
    arch            TEXT    NOT NULL,
    repository      TEXT    NOT NULL,
    checksum        TEXT    NOT NULL,
    datahash        TEXT    NOT NULL,
    verdict         TEXT    NOT NULL,
    index_sha256    TEXT    NOT NULL,
    PRIMARY KEY (attestation_seq, idx)
) WITHOUT ROWID;
INSERT INTO attestation_packages_v4 SELECT attestation_seq, idx, name, version, arch, repository, checksum, datahash, verdict, index_sha256
    FROM attestation_packages;
DROP TABLE attestation_packages;
ALTER TABLE attestation_packages_v4 RENAME TO attestation_packages;

-- One row per run: it holds the keys of every package of the ledger
-- entries with seq in (previous run's upto_seq, upto_seq].
CREATE TABLE ledger_runs (
    run      INTEGER PRIMARY KEY,
    upto_seq INTEGER NOT NULL
);

-- kind 'c': a = checksum, b = ''; kind 'n': a = name, b = version.
CREATE TABLE ledger_keys (
    run             INTEGER NOT NULL,
    kind            TEXT    NOT NULL,
    a               TEXT    NOT NULL,
    b               TEXT    NOT NULL,
    attestation_seq INTEGER NOT NULL,
    PRIMARY KEY (run, kind, a, b, attestation_seq)
) WITHOUT ROWID;

-- What an earlier version recorded becomes the first run.
INSERT INTO ledger_runs (run, upto_seq) SELECT 1, MAX(seq) FROM attestations HAVING COUNT(*) > 0;
INSERT INTO ledger_keys (run, kind, a, b, attestation_seq)
    SELECT DISTINCT 1, 'c', checksum, '', attestation_seq FROM attestation_packages
    UNION SELECT DISTINCT 1, 'n', name, version, attestation_seq FROM attestation_packages;
