package sqlite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// maxBundleBytes bounds a decompressed bundle (a 10,000-package SPDX bundle
// is about 20 MB).
const maxBundleBytes = 256 << 20

// bundleCodec compresses ledger bundles: they are base64 JSON, most of a
// ledger entry's bytes, and compressing them is most of an append's CPU.
// New bundles are written as "s2": an S2 block (klauspost/compress/s2,
// about 0.13 ms for a 50-package SPDX bundle of 100 KB, to 23%) followed by
// the CRC-32C of the bundle, checked on read since the block format has
// none. Schema version 3 wrote "zstd" frames (0.35 ms, to 15%); they are
// still read. The encoders and decoder are safe for concurrent use.
type bundleCodec struct {
	dec *zstd.Decoder
}

var crc32c = crc32.MakeTable(crc32.Castagnoli)

func newBundleCodec() (bundleCodec, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxBundleBytes))
	if err != nil {
		return bundleCodec{}, err
	}
	return bundleCodec{dec: dec}, nil
}

// encode returns the codec name and the bytes to store: s2 when that is
// smaller, else the bundle as it is ("").
func (c bundleCodec) encode(b []byte) (string, []byte) {
	z := s2.Encode(make([]byte, s2.MaxEncodedLen(len(b))+4), b)
	z = binary.BigEndian.AppendUint32(z, crc32.Checksum(b, crc32c))
	if len(z) >= len(b) {
		return "", b
	}
	return "s2", z
}

var errCodec = errors.New("stored bundle")

func (c bundleCodec) decode(codec string, b []byte) ([]byte, error) {
	switch codec {
	case "":
		return b, nil
	case "s2":
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: s2: %d bytes", errCodec, len(b))
		}
		body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
		if n, err := s2.DecodedLen(body); err != nil || n > maxBundleBytes {
			return nil, fmt.Errorf("%w: s2: bad length (%d, %v)", errCodec, n, err)
		}
		out, err := s2.Decode(nil, body)
		if err != nil {
			return nil, fmt.Errorf("%w: s2: %w", errCodec, err)
		}
		if crc32.Checksum(out, crc32c) != sum {
			return nil, fmt.Errorf("%w: s2: CRC-32C mismatch", errCodec)
		}
		return out, nil
	case "zstd":
		out, err := c.dec.DecodeAll(b, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %w", errCodec, err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: unknown codec %q", errCodec, codec)
}

func (c bundleCodec) close() {
	if c.dec != nil {
		c.dec.Close()
	}
}
