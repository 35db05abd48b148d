package sqlite

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/vouchdev/vouch/store/storetest"
)

// TestBundlesStoredCompressed: a large bundle is stored as zstd and read
// back byte for byte; a tiny one is stored as it is; an unknown codec or a
// corrupt frame is an error, never a wrong bundle.
func TestBundlesStoredCompressed(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "vouch.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := storetest.Attestation("", time.Unix(1_700_000_000, 0), "img", 50)
	a.Predicates[0].Bundle = storetest.BundleLike("img", 50, 1400)
	a.Predicates[1].Bundle = []byte(`{}`)
	id, err := s.AppendAttestation(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT codec, length(bundle) FROM attestation_predicates ORDER BY idx`)
	if err != nil {
		t.Fatal(err)
	}
	var codecs []string
	var sizes []int
	for rows.Next() {
		var c string
		var n int
		if err := rows.Scan(&c, &n); err != nil {
			t.Fatal(err)
		}
		codecs, sizes = append(codecs, c), append(sizes, n)
	}
	rows.Close()
	if len(codecs) != 2 || codecs[0] != "s2" || codecs[1] != "" || sizes[0]*3 > len(a.Predicates[0].Bundle) {
		t.Errorf("stored codecs %q sizes %v; want s2 (under a third of %d bytes) and raw", codecs, sizes, len(a.Predicates[0].Bundle))
	}
	got, err := s.Attestation(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Predicates {
		if !bytes.Equal(got.Predicates[i].Bundle, a.Predicates[i].Bundle) {
			t.Errorf("predicate %d: bundle read back differs", i)
		}
	}

	// A bundle written by schema version 3 (a zstd frame) still reads back.
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE attestation_predicates SET codec = 'zstd', bundle = ? WHERE idx = 0`,
		enc.EncodeAll(a.Predicates[0].Bundle, nil)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Attestation(ctx, id); err != nil || !bytes.Equal(got.Predicates[0].Bundle, a.Predicates[0].Bundle) {
		t.Errorf("zstd bundle read back: %v, equal %v", err, err == nil && bytes.Equal(got.Predicates[0].Bundle, a.Predicates[0].Bundle))
	}

	// A flipped byte in the middle of an s2 block: refused (by the block
	// decoder or the CRC-32C), never returned.
	codec, good := s.codec.encode(a.Predicates[0].Bundle)
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 0x01
	wrongSum := bytes.Clone(good)
	wrongSum[len(wrongSum)-1] ^= 0x80
	for _, tt := range []struct {
		name string
		sql  string
		args []any
	}{
		{"unknown codec", `UPDATE attestation_predicates SET codec = 'lz4' WHERE idx = 0`, nil},
		{"corrupt zstd frame", `UPDATE attestation_predicates SET codec = 'zstd', bundle = x'28b52ffd00' WHERE idx = 0`, nil},
		{"corrupt s2 block", `UPDATE attestation_predicates SET codec = ?, bundle = ? WHERE idx = 0`, []any{codec, bad}},
		{"wrong s2 checksum", `UPDATE attestation_predicates SET codec = ?, bundle = ? WHERE idx = 0`, []any{codec, wrongSum}},
		{"short s2", `UPDATE attestation_predicates SET codec = 's2', bundle = x'0102' WHERE idx = 0`, nil},
	} {
		if _, err := s.db.ExecContext(ctx, tt.sql, tt.args...); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Attestation(ctx, id); !errors.Is(err, errCodec) {
			t.Errorf("%s: Attestation = %v; want errCodec", tt.name, err)
		}
	}
}
