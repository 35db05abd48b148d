// Package store persists what vouch has seen in signed indexes and what it has attested, behind one narrow interface.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/vouchdev/vouch/apk"
)

// Sentinel errors. Backends wrap them with %w and a short context, so
// callers test with errors.Is. Any other error is an infrastructure fault
// (database unreachable, disk full, ...): callers retry later or report it;
// they never read it as "absent" or "allowed".
var (
	// ErrNotFound: the requested snapshot, entry, attestation or revocation
	// does not exist. Callers treat it as a normal answer ("not seen",
	// "not revoked", "unknown id"), never as a fault.
	ErrNotFound = errors.New("not found")

	// ErrConflict: the write lost a race or contradicts stored state — a
	// snapshot whose parent is no longer the latest one, a diff that adds an
	// entry already current or removes one that is not, an attestation id
	// that already exists, a checksum that is already revoked. Nothing was
	// written. Callers reload the current state (LatestSnapshot, ...) and
	// decide again; retrying the same call unchanged fails the same way.
	ErrConflict = errors.New("conflict with stored state")

	// ErrInvalidArgument: the call itself is malformed (empty repository,
	// zero checksum, entry count that does not match the diff, bad page
	// token, ...). Nothing was written. It is a bug in the caller, or bad
	// client input passed through; do not retry.
	ErrInvalidArgument = errors.New("invalid argument")

	// ErrSchemaTooNew: the database was migrated by a newer vouch than this
	// one. Opening fails; run the newer binary or restore a backup.
	ErrSchemaTooNew = errors.New("database schema is newer than this binary")

	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
)

// Store is vouch's persistence. Implementations (store/sqlite,
// store/postgres) MUST be safe for concurrent use by many goroutines, and
// every method MUST either complete entirely or leave no trace: each write is
// one transaction, committed before the method returns nil.
//
// Times are stored in UTC with microsecond precision; values read back are
// truncated accordingly and have location UTC.
type Store interface {
	SnapshotStore
	EntryStore
	Ledger
	RevocationStore
	EventStore
	Coordinator

	// Close releases the store's connections. Calls after Close fail with
	// ErrClosed. It is not safe to call Close concurrently with other methods
	// that are still expected to succeed.
	Close() error
}

// SnapshotStore keeps index snapshots per (repository, arch).
type SnapshotStore interface {
	// SaveSnapshot stores s as the new latest snapshot of (s.Repository,
	// s.Arch) together with diff, the change of the entry list against
	// s.Parent (0 for the first snapshot of that repository and arch), in one
	// transaction: either the snapshot, its diff and its raw bytes are all
	// visible or nothing is. It returns the new snapshot's id (ids grow with
	// time). The raw bytes of the previous snapshot are dropped: only the
	// latest snapshot keeps Raw.
	//
	// s.EntryCount MUST equal the parent's EntryCount + len(Added) -
	// len(Removed) (else ErrInvalidArgument). ErrConflict when s.Parent is
	// not the latest snapshot any more (another replica saved one first), or
	// when the diff adds an entry that is already current or removes one that
	// is not. Not idempotent: a retry after success fails with ErrConflict,
	// since the parent changed.
	SaveSnapshot(ctx context.Context, s Snapshot, diff Diff) (id int64, err error)

	// LatestSnapshot returns the latest snapshot of (repo, arch) including its
	// Raw bytes, or ErrNotFound if none was ever saved.
	LatestSnapshot(ctx context.Context, repo, arch string) (Snapshot, error)

	// LatestSnapshotID returns the id of the latest snapshot of (repo, arch),
	// or ErrNotFound. It is cheap (one primary-key read) and meant for
	// polling: a replica compares it with the id it serves and calls
	// LatestSnapshot when it differs.
	LatestSnapshotID(ctx context.Context, repo, arch string) (int64, error)

	// Snapshot returns the metadata (Raw nil) of the snapshot with id, or
	// ErrNotFound.
	Snapshot(ctx context.Context, id int64) (Snapshot, error)

	// ConfirmFresh records that the repository confirmed snapshot id unchanged
	// at time at (an HTTP 304, or a byte-identical download). ConfirmedAt only
	// moves forward; an older at is ignored, so the call is idempotent.
	// ErrNotFound when no snapshot has that id.
	ConfirmFresh(ctx context.Context, id int64, at time.Time) error

	// SnapshotsBySHA256 returns the metadata (Raw nil) of every snapshot of
	// (repo, arch) whose file had the given hex sha256, newest first; empty
	// when none. The index cache uses it to recognise a rollback: a download
	// byte-identical to an older snapshot.
	SnapshotsBySHA256(ctx context.Context, repo, arch, sha256 string) ([]Snapshot, error)
}

// EntryStore answers questions about every (repository, arch, name, version,
// checksum) ever seen in a verified index. Entries are written only by
// SaveSnapshot.
type EntryStore interface {
	// EntryHistory returns every appearance of (name, version) in the index of
	// (repo, arch) — possibly several checksums, possibly several intervals —
	// oldest first; empty when never seen.
	EntryHistory(ctx context.Context, repo, arch, name, version string) ([]EntryRecord, error)

	// LookupEntry returns every appearance of (name, version) in any
	// repository's index for arch, oldest first; empty when never seen. This
	// is the hot path for verifying a package that left the index (target:
	// under 100 µs).
	LookupEntry(ctx context.Context, name, version, arch string) ([]EntryRecord, error)

	// EntriesByChecksum returns every appearance of checksum in any
	// repository and arch, oldest first; empty when never seen.
	EntriesByChecksum(ctx context.Context, c apk.Checksum) ([]EntryRecord, error)

	// SeenEntries returns every (name, version, checksum) ever seen in the
	// index of (repo, arch), one record per appearance, in no particular
	// order. The index cache loads it once per (repo, arch) to detect
	// equivocation (a (name, version) seen before with another checksum) and
	// rollback (the newest known version dropped).
	SeenEntries(ctx context.Context, repo, arch string) ([]EntryRecord, error)
}

// Ledger is the append-only record of attestations vouch issued (and, if the
// caller wishes, of refusals).
type Ledger interface {
	// AppendAttestation stores a. When a.ID is empty a time-sortable id is
	// generated (NewID(a.Time)). It returns the id once the entry is
	// committed and durable: only then may the caller hand the attestation
	// out. ErrConflict when the id exists already (nothing written);
	// ErrInvalidArgument when a.Time is zero or a package checksum is zero.
	AppendAttestation(ctx context.Context, a Attestation) (id string, err error)

	// Attestation returns the ledger entry with id, or ErrNotFound.
	Attestation(ctx context.Context, id string) (Attestation, error)

	// ListAttestations returns one page of the entries matching q, newest
	// first (by Time, then ID), and the token of the next page ("" when this
	// is the last one). Page tokens are opaque and only valid with the same
	// filter; a malformed token is ErrInvalidArgument. Entries appended
	// while paging never make a page repeat or skip an older entry.
	ListAttestations(ctx context.Context, q AttestationQuery) (page []Attestation, next string, err error)
}

// RevocationStore keeps revoked checksums. The server checks revocations on
// every verification: it SHOULD cache Revocations and reload when
// RevocationsVersion changes.
type RevocationStore interface {
	// Revoke records r. ErrConflict when r.Checksum is already revoked (the
	// existing revocation stays as it is); ErrInvalidArgument when the
	// checksum is zero.
	Revoke(ctx context.Context, r Revocation) error

	// Unrevoke lifts the current revocation of c, recording who and when (the
	// history is kept). ErrNotFound when c is not revoked.
	Unrevoke(ctx context.Context, c apk.Checksum, by string, at time.Time) error

	// Revocation returns the current revocation of c, or ErrNotFound when c
	// is not revoked.
	Revocation(ctx context.Context, c apk.Checksum) (Revocation, error)

	// Revocations returns every current revocation and the version they
	// belong to, read in one consistent snapshot.
	Revocations(ctx context.Context) (RevocationSet, error)

	// RevocationsVersion returns a counter that grows with every Revoke and
	// Unrevoke (on every replica). Cheap; meant to be polled.
	RevocationsVersion(ctx context.Context) (int64, error)
}

// EventStore keeps the events worth keeping as evidence: rollbacks,
// equivocations, refresh failures, accepted equivocations.
type EventStore interface {
	// AppendEvent stores e and returns its id (ids grow with time).
	// ErrInvalidArgument when Kind, Repository or Time is empty.
	AppendEvent(ctx context.Context, e Event) (id int64, err error)

	// ListEvents returns one page of matching events, newest first, and the
	// token of the next page ("" when this is the last one).
	ListEvents(ctx context.Context, q EventQuery) (page []Event, next string, err error)
}

// Coordinator lets several replicas share the work of refreshing indexes.
//
// The intended refresh loop of a replica, per (repo, arch):
//
//	unlock, ok, err := st.TryLockRefresh(ctx, repo, arch)
//	if !ok { wait for WatchSnapshots or poll LatestSnapshotID; load it; return }
//	defer unlock()
//	latest := st.LatestSnapshot(ctx, repo, arch) // someone may have refreshed meanwhile
//	if latest is fresh enough { serve it; return }
//	fetch (conditional GET), verify, then SaveSnapshot or ConfirmFresh
//
// The lock is an optimisation that keeps replicas from fetching the same
// index at once; correctness comes from SaveSnapshot's parent check.
type Coordinator interface {
	// TryLockRefresh tries, without waiting, to become the one refresher of
	// (repo, arch) among all processes sharing the store (on SQLite: within
	// this process). ok is false when someone else holds it. On success the
	// caller MUST call unlock exactly once when done (further calls are
	// no-ops); the lock also ends when the holder's process or database
	// connection dies. The lock is not reentrant.
	TryLockRefresh(ctx context.Context, repo, arch string) (unlock func(), ok bool, err error)

	// WatchSnapshots delivers a notice every time a snapshot is saved (by any
	// replica sharing the store) until ctx is done, then closes the channel.
	// Notices are hints: they may be coalesced or lost (for instance while
	// the database connection is re-established), so callers SHOULD also
	// poll LatestSnapshotID now and then.
	WatchSnapshots(ctx context.Context) (<-chan SnapshotNotice, error)
}

// Snapshot describes one verified index file of a (repository, arch).
type Snapshot struct {
	ID         int64  // assigned by SaveSnapshot; ignored on input
	Parent     int64  // snapshot the diff is against; 0 for the first
	Repository string // configured repository name, e.g. "wolfi"
	Arch       string // e.g. "x86_64"
	SHA256     string // lower-case hex sha256 of the whole signed file
	FetchedAt  time.Time
	// ConfirmedAt is the last time the repository confirmed this snapshot
	// unchanged; equal to FetchedAt when none since (SaveSnapshot sets it to
	// FetchedAt).
	ConfirmedAt  time.Time
	ETag         string // HTTP ETag of the download, "" when none
	LastModified string // HTTP Last-Modified of the download, "" when none
	KeyNames     []string
	EntryCount   int
	Description  string // the index's DESCRIPTION
	// Raw is the signed file as downloaded. Set on SaveSnapshot (required)
	// and returned by LatestSnapshot; nil everywhere else.
	Raw []byte
}

// SnapshotNotice tells a watcher that (Repository, Arch) has a new latest
// snapshot.
type SnapshotNotice struct {
	Repository, Arch string
	ID               int64
}

// Entry is one package line of an index, as far as the store cares.
type Entry struct {
	Name     string
	Version  string
	Checksum apk.Checksum
}

// Diff is the change of an index's entry list from one snapshot to the next.
// An entry whose checksum changed under the same name and version appears in
// both lists (removed with the old checksum, added with the new one).
type Diff struct {
	Added   []Entry
	Removed []Entry
}

// EntryRecord is one appearance of an entry in the index of (Repository,
// Arch): from the snapshot that added it until the snapshot that dropped it.
// An entry that leaves and comes back has two records.
type EntryRecord struct {
	Repository string
	Arch       string
	Entry
	FirstSnapshot int64
	FirstSeen     time.Time // FetchedAt of FirstSnapshot
	// LastSeen is the last time an index listing the entry was fetched or
	// confirmed: for a current entry the latest snapshot's ConfirmedAt, for a
	// dropped one the ConfirmedAt of the last snapshot that listed it.
	LastSeen     time.Time
	LeftSnapshot int64     // snapshot that no longer lists it; 0 while current
	LeftAt       time.Time // FetchedAt of LeftSnapshot; zero while current
}

// Current reports whether the latest snapshot still lists the entry.
func (r EntryRecord) Current() bool { return r.LeftSnapshot == 0 }

// Subject is what an attestation is about: an artifact name and its digests
// (algorithm → lower-case hex), as in an in-toto Statement.
type Subject struct {
	Name   string
	Digest map[string]string
}

// AttestedPackage is one package claim of a verification with its verdict.
type AttestedPackage struct {
	Name       string
	Version    string
	Arch       string
	Repository string
	Checksum   apk.Checksum
	DataHash   string // hex sha256 of the data part, "" when not claimed
	Verdict    string // e.g. "VERIFIED", "CHECKSUM_MISMATCH"
	// IndexSHA256 is the sha256 of the index file that decided the verdict,
	// "" when none did.
	IndexSHA256 string
}

// Predicate is one signed statement of an attestation: its predicate type,
// the digest of the statement, and the Sigstore bundle carrying it.
type Predicate struct {
	Type   string            // e.g. "https://spdx.dev/Document"
	Digest map[string]string // algorithm → hex digest of the statement
	Bundle []byte            // the bundle as issued (JSON)
}

// Attestation is one ledger entry.
type Attestation struct {
	ID         string // NewID(Time) when empty on append
	Time       time.Time
	Builder    string // authenticated caller identity, "anonymous" when none
	Verdict    string // overall verdict
	Subjects   []Subject
	Packages   []AttestedPackage
	Predicates []Predicate
}

// AttestationQuery selects ledger entries. Zero fields do not filter; set
// fields must all match.
type AttestationQuery struct {
	// SubjectDigest is "alg:hex", e.g. "sha256:9f86d0…".
	SubjectDigest  string
	PackageName    string
	PackageVersion string // only together with PackageName
	// Checksum selects entries listing a package with this checksum (which
	// ledger entries a revocation affects).
	Checksum apk.Checksum
	Since    time.Time // inclusive
	Until    time.Time // exclusive
	// PageSize bounds the page; 0 means 100, values above 1000 are 1000.
	PageSize  int
	PageToken string
}

// Revocation withdraws trust in a package checksum.
type Revocation struct {
	Checksum apk.Checksum
	Reason   string
	By       string
	At       time.Time
}

// RevocationSet is every current revocation at one Version.
type RevocationSet struct {
	Version     int64
	Revocations []Revocation // ordered by At, oldest first
}

// EventKind names what happened.
type EventKind string

// Event kinds the index cache records.
const (
	EventRollback             EventKind = "rollback"
	EventEquivocation         EventKind = "equivocation"
	EventRefreshFailure       EventKind = "refresh_failure"
	EventEquivocationAccepted EventKind = "equivocation_accepted"
)

// Event is a recorded incident of a (repository, arch).
type Event struct {
	ID         int64 // assigned by AppendEvent
	Kind       EventKind
	Repository string
	Arch       string
	Time       time.Time
	// SHA256 is the hex sha256 of the index file involved, "" when none.
	SHA256  string
	Name    string
	Version string
	// Checksum and OtherChecksum: for an equivocation the one seen before
	// and the new one; zero when not applicable.
	Checksum      apk.Checksum
	OtherChecksum apk.Checksum
	Detail        string // human-readable explanation
	// Evidence is optional raw material kept for later inspection (e.g. the
	// refused index file).
	Evidence []byte
}

// EventQuery selects events. Zero fields do not filter.
type EventQuery struct {
	Repository string
	Arch       string // only together with Repository
	Kind       EventKind
	Since      time.Time // inclusive
	// PageSize bounds the page; 0 means 100, values above 1000 are 1000.
	PageSize  int
	PageToken string
}
