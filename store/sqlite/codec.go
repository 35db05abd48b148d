package sqlite

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/klauspost/compress/zstd"
)

// maxBundleBytes bounds a decompressed bundle (a 10,000-package SPDX bundle
// is about 20 MB).
const maxBundleBytes = 256 << 20

// bundleCodec compresses ledger bundles with zstd: they are base64 JSON
// and shrink about sevenfold, which is most of a ledger entry's bytes. The
// encoder and decoder are safe for concurrent use (EncodeAll, DecodeAll).
type bundleCodec struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
}

func newBundleCodec() (bundleCodec, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
	if err != nil {
		return bundleCodec{}, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxBundleBytes))
	if err != nil {
		return bundleCodec{}, err
	}
	return bundleCodec{enc: enc, dec: dec}, nil
}

// encode returns the codec name and the bytes to store: zstd when that is
// smaller, else the bundle as it is ("").
func (c bundleCodec) encode(b []byte) (string, []byte) {
	z := c.enc.EncodeAll(b, make([]byte, 0, len(b)/4))
	if len(z) >= len(b) {
		return "", b
	}
	return "zstd", z
}

var errCodec = errors.New("stored bundle")

func (c bundleCodec) decode(codec string, b []byte) ([]byte, error) {
	switch codec {
	case "":
		return b, nil
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
