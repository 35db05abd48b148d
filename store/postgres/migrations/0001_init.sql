-- vouch store schema, version 1 (PostgreSQL). Unqualified names: the tables
-- live in the first schema of search_path (Config.Schema when set).

CREATE TABLE streams (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repository      TEXT   NOT NULL,
    arch            TEXT   NOT NULL,
    latest_snapshot BIGINT,              -- NULL until the first snapshot
    UNIQUE (repository, arch)
);

CREATE TABLE snapshots (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id     BIGINT      NOT NULL REFERENCES streams (id),
    parent_id     BIGINT      REFERENCES snapshots (id),
    sha256        TEXT        NOT NULL,
    fetched_at    TIMESTAMPTZ NOT NULL,
    confirmed_at  TIMESTAMPTZ NOT NULL,
    etag          TEXT        NOT NULL,
    last_modified TEXT        NOT NULL,
    key_names     TEXT[]      NOT NULL,
    entry_count   INTEGER     NOT NULL,
    description   TEXT        NOT NULL
);
CREATE INDEX snapshots_sha256 ON snapshots (stream_id, sha256);

-- The signed file of the latest snapshot per stream, replaced on every save.
CREATE TABLE snapshot_raw (
    stream_id   BIGINT PRIMARY KEY REFERENCES streams (id),
    snapshot_id BIGINT NOT NULL REFERENCES snapshots (id),
    raw         BYTEA  NOT NULL
);

-- One row per appearance of an entry in a stream's index.
CREATE TABLE entries (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id      BIGINT      NOT NULL,
    name           TEXT        NOT NULL,
    version        TEXT        NOT NULL,
    checksum       TEXT        NOT NULL,
    first_snapshot BIGINT      NOT NULL,
    first_seen     TIMESTAMPTZ NOT NULL,
    left_snapshot  BIGINT,               -- NULL while current
    left_at        TIMESTAMPTZ,
    last_seen      TIMESTAMPTZ           -- set when it leaves
);
CREATE INDEX entries_key ON entries (stream_id, name, version);
CREATE INDEX entries_checksum ON entries (checksum);
CREATE UNIQUE INDEX entries_current ON entries (stream_id, name, version, checksum) WHERE left_snapshot IS NULL;

CREATE TABLE attestations (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT        NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    builder    TEXT        NOT NULL,
    verdict    TEXT        NOT NULL,
    subjects   TEXT        NOT NULL      -- JSON, as given
);
CREATE INDEX attestations_time ON attestations (created_at, id);

CREATE TABLE attestation_digests (
    attestation_seq BIGINT NOT NULL REFERENCES attestations (seq),
    alg             TEXT   NOT NULL,
    value           TEXT   NOT NULL
);
CREATE INDEX attestation_digests_value ON attestation_digests (value, alg);
CREATE INDEX attestation_digests_seq ON attestation_digests (attestation_seq);

CREATE TABLE attestation_packages (
    attestation_seq BIGINT  NOT NULL REFERENCES attestations (seq),
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
);
CREATE INDEX attestation_packages_name ON attestation_packages (name, version);
CREATE INDEX attestation_packages_checksum ON attestation_packages (checksum);

CREATE TABLE attestation_predicates (
    attestation_seq BIGINT  NOT NULL REFERENCES attestations (seq),
    idx             INTEGER NOT NULL,
    type            TEXT    NOT NULL,
    digest          TEXT    NOT NULL,    -- JSON object
    bundle          BYTEA   NOT NULL,
    PRIMARY KEY (attestation_seq, idx)
);

CREATE TABLE revocations (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    checksum     TEXT        NOT NULL,
    reason       TEXT        NOT NULL,
    revoked_by   TEXT        NOT NULL,
    revoked_at   TIMESTAMPTZ NOT NULL,
    unrevoked_by TEXT,
    unrevoked_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX revocations_current ON revocations (checksum) WHERE unrevoked_at IS NULL;

CREATE TABLE counters (
    name  TEXT   PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('revocations', 0);

CREATE TABLE events (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind           TEXT        NOT NULL,
    repository     TEXT        NOT NULL,
    arch           TEXT        NOT NULL,
    at             TIMESTAMPTZ NOT NULL,
    sha256         TEXT        NOT NULL,
    name           TEXT        NOT NULL,
    version        TEXT        NOT NULL,
    checksum       TEXT        NOT NULL,
    other_checksum TEXT        NOT NULL,
    detail         TEXT        NOT NULL,
    evidence       BYTEA
);
CREATE INDEX events_stream ON events (repository, arch, id);
