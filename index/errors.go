package index

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by this package wrap one of them with %w
// and a short context, so callers test with errors.Is; several may match at
// once (a decompression bomb is both ErrVerify and ErrTooLarge). The
// underlying cause (an apk or store error, a network error) stays in the
// chain as well.
var (
	// ErrInvalidConfig: Config.Validate refused the configuration. Fix the
	// configuration; nothing was started.
	ErrInvalidConfig = errors.New("invalid index configuration")

	// ErrUnknownRepository: the repository name, or the architecture, is not
	// configured. The server answers UNKNOWN_REPOSITORY (lookups) or
	// InvalidArgument/NotFound (admin calls); retrying does not help.
	ErrUnknownRepository = errors.New("unknown repository or architecture")

	// ErrInvalidArgument: a call was malformed (empty package name, zero
	// checksum, ...). Nothing was done; do not retry unchanged.
	ErrInvalidArgument = errors.New("invalid argument")

	// ErrFetch: no source (canonical URL, then each mirror) delivered the
	// index: network error, HTTP status, file error. The previous snapshot
	// keeps serving until it turns stale; the refresh loop retries.
	ErrFetch = errors.New("fetching index failed")

	// ErrTimeout: a fetch exceeded the connect, header or body timeout. It
	// also matches ErrFetch.
	ErrTimeout = fmt.Errorf("%w: timed out", ErrFetch)

	// ErrTooLarge: the download exceeded the body size limit, or the index
	// decompressed beyond the repository's MaxIndexBytes (a gzip bomb).
	ErrTooLarge = errors.New("index too large")

	// ErrVerify: the downloaded file is not an index signed by one of the
	// repository's pinned keys, or is malformed (the apk error is in the
	// chain: apk.ErrSignature, apk.ErrUntrustedKey, apk.ErrIndexFormat, ...).
	// Nothing of it was kept.
	ErrVerify = errors.New("index verification failed")

	// ErrRollback: a validly signed index was refused because it is
	// byte-identical to a snapshot older than the current one, or drops a
	// package's newest known version while offering only older ones. An
	// event was recorded; the current snapshot stays. Investigate the
	// source (a replayed or frozen mirror).
	ErrRollback = errors.New("index rollback refused")

	// ErrEquivocation: a validly signed index lists a (name, version, arch)
	// with a checksum other than one seen before. Events with both
	// checksums were recorded; the current snapshot stays. It means a key
	// compromise or a repository rewrite: an operator may accept a specific
	// new checksum with Cache.AcceptEquivocation.
	ErrEquivocation = errors.New("index equivocation refused")

	// ErrBusy: another replica held the refresh lock of this arch for
	// longer than one whole fetch may take. Nothing was done; the refresh
	// loop tries again.
	ErrBusy = errors.New("another replica is refreshing this index")

	// ErrStore: the store failed while loading or persisting a snapshot or
	// event. The in-memory state is unchanged; retry later.
	ErrStore = errors.New("index store failure")
)
