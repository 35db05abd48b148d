package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/store"
)

// Entries returns n synthetic index entries named pkg-00000, pkg-00001, …
// with random SHA-1 checksums; equal seeds give equal entries.
func Entries(n int, seed uint64) []store.Entry {
	r := rand.New(rand.NewPCG(seed, 0x766f756368))
	out := make([]store.Entry, n)
	for i := range out {
		out[i] = store.Entry{
			Name:     fmt.Sprintf("pkg-%05d", i),
			Version:  fmt.Sprintf("%d.%d.%d-r%d", r.IntN(10), r.IntN(30), r.IntN(100), r.IntN(5)),
			Checksum: randomChecksum(r),
		}
	}
	return out
}

func randomChecksum(r *rand.Rand) apk.Checksum {
	var sum [20]byte
	for i := range sum {
		sum[i] = byte(r.Uint32())
	}
	return apk.SHA1Checksum(sum)
}

// Checksum returns a deterministic SHA-1 checksum derived from s.
func Checksum(s string) apk.Checksum {
	h := sha256.Sum256([]byte(s))
	var sum [20]byte
	copy(sum[:], h[:])
	return apk.SHA1Checksum(sum)
}

// Change returns the next entry list and its diff from prev: a fraction
// frac of the packages gets a new version (removed with the old version,
// added with the new one). prev is not modified.
func Change(prev []store.Entry, frac float64, seed uint64) ([]store.Entry, store.Diff) {
	r := rand.New(rand.NewPCG(seed, 0x63686e67))
	next := append([]store.Entry(nil), prev...)
	n := int(float64(len(prev)) * frac)
	var d store.Diff
	for _, i := range r.Perm(len(prev))[:n] {
		old := next[i]
		e := store.Entry{Name: old.Name, Version: old.Version + fmt.Sprintf(".%d", seed), Checksum: randomChecksum(r)}
		next[i] = e
		d.Removed = append(d.Removed, old)
		d.Added = append(d.Added, e)
	}
	return next, d
}

// SHA256 returns the hex sha256 of b.
func SHA256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// NewSnapshot returns a snapshot of (repo, arch) whose raw bytes are raw.
func NewSnapshot(repo, arch string, parent int64, count int, raw []byte, at time.Time) store.Snapshot {
	return store.Snapshot{
		Parent:       parent,
		Repository:   repo,
		Arch:         arch,
		SHA256:       SHA256(raw),
		FetchedAt:    at,
		ETag:         `"` + SHA256(raw)[:12] + `"`,
		LastModified: at.UTC().Format(time.RFC1123),
		KeyNames:     []string{"test-key.rsa.pub"},
		EntryCount:   count,
		Description:  "v3.20.0-" + repo,
		Raw:          raw,
	}
}

// Attestation returns a synthetic ledger entry with n packages.
func Attestation(id string, at time.Time, subject string, n int) store.Attestation {
	a := store.Attestation{
		ID:      id,
		Time:    at,
		Builder: "spiffe://example.org/builder",
		Verdict: "VERIFIED",
		Subjects: []store.Subject{{
			Name:   "registry.example.org/app",
			Digest: map[string]string{"sha256": SHA256([]byte(subject))},
		}},
		Predicates: []store.Predicate{
			{Type: "https://spdx.dev/Document", Digest: map[string]string{"sha256": SHA256([]byte(subject + "spdx"))}, Bundle: []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","spdx":true}`)},
			{Type: "https://slsa.dev/verification_summary/v1", Digest: map[string]string{"sha256": SHA256([]byte(subject + "vsa"))}, Bundle: []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","vsa":true}`)},
		},
	}
	for i := range n {
		a.Packages = append(a.Packages, store.AttestedPackage{
			Name:        fmt.Sprintf("pkg-%05d", i),
			Version:     "1.0.0-r0",
			Arch:        "x86_64",
			Repository:  "wolfi",
			Checksum:    Checksum(fmt.Sprintf("%s/%d", subject, i)),
			DataHash:    SHA256([]byte(fmt.Sprintf("data %s/%d", subject, i))),
			Verdict:     "VERIFIED",
			IndexSHA256: SHA256([]byte("index")),
		})
	}
	return a
}

// Time returns the fixed base time the suite uses.
func Time() time.Time { return t0 }
