package attest

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"google.golang.org/protobuf/encoding/protojson"
)

// ErrSigning reports that the Signer failed; nothing was issued.
var ErrSigning = errors.New("signing attestation")

// BundleMediaType is the Sigstore bundle media type vouch emits.
const BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"

// Attestation is one signed predicate about one subject, in every form
// vouch publishes.
type Attestation struct {
	// PredicateType is PredicateTypeSPDX or PredicateTypeVSA.
	PredicateType string
	// Statement is the in-toto Statement v1 JSON that was signed (the DSSE
	// payload).
	Statement []byte
	// Bundle is the Sigstore bundle v0.3 JSON (protojson) holding the DSSE
	// envelope; its verification material is the public key hint.
	Bundle []byte
	// Envelope is the plain DSSE envelope JSON with the same signature,
	// for the legacy "sha256-<hex>.att" image layout.
	Envelope []byte
}

// Issue builds, for in's subject, the SPDX 2.3 and SLSA VSA v1 statements and
// signs each with s. It returns them in that order. The only input that
// varies the statements is in.Time (zero: Now()); ECDSA signatures are
// randomised, Ed25519 ones are not. Issue validates in (ErrInvalidInput) and
// is safe for concurrent use when s is.
func Issue(ctx context.Context, s Signer, in Input) ([]Attestation, error) {
	t := in.Time
	if t.IsZero() {
		var err error
		if t, err = Now(); err != nil {
			return nil, err
		}
	}
	pkgs, err := sortedPackages(&in)
	if err != nil {
		return nil, err
	}
	doc, err := buildSPDX(&in, pkgs, t)
	if err != nil {
		return nil, err
	}
	spdxStmt, err := marshalSPDXStatement(in.Subject, doc)
	if err != nil {
		return nil, err
	}
	vsaBytes, err := marshalVSA(buildVSA(&in, pkgs, t))
	if err != nil {
		return nil, err
	}
	vsaStmt, err := marshalStatement(in.Subject, PredicateTypeVSA, vsaBytes)
	if err != nil {
		return nil, err
	}
	kp, err := newKeypair(s)
	if err != nil {
		return nil, err
	}
	out := make([]Attestation, 0, 2)
	for _, pr := range []struct {
		typ  string
		stmt signable
	}{{PredicateTypeSPDX, spdxStmt}, {PredicateTypeVSA, vsaStmt}} {
		a, err := signStatement(ctx, kp, pr.stmt.statement(), pr.stmt.pae())
		if err != nil {
			return nil, err
		}
		a.PredicateType = pr.typ
		out = append(out, a)
	}
	return out, nil
}

// SignStatement signs an already built in-toto Statement (the DSSE payload,
// payloadType PayloadType) with s and returns the bundle and envelope forms.
// PredicateType is left empty. It does not inspect stmt.
func SignStatement(ctx context.Context, s Signer, stmt []byte) (Attestation, error) {
	kp, err := newKeypair(s)
	if err != nil {
		return Attestation{}, err
	}
	return signStatement(ctx, kp, stmt, nil)
}

// signStatement signs stmt; paeBytes, when not nil, is its PAE already
// formed (signable.pae).
func signStatement(ctx context.Context, kp *keypair, stmt, paeBytes []byte) (Attestation, error) {
	// sigstore-go signs DSSE PAE(payloadType, payload) and builds a v0.3
	// bundle whose verification material is the public key hint.
	content := dsseContent{DSSEData: &sign.DSSEData{Data: stmt, PayloadType: PayloadType}, pae: paeBytes}
	b, err := sign.Bundle(content, kp, sign.BundleOptions{Context: ctx})
	if err != nil {
		return Attestation{}, fmt.Errorf("%w: %w", ErrSigning, err)
	}
	env := b.GetDsseEnvelope()
	if env == nil || len(env.GetSignatures()) != 1 {
		return Attestation{}, fmt.Errorf("%w: bundle has no single DSSE signature", ErrSigning)
	}
	// The statement's base64 is most of both documents: encode it once,
	// into the envelope, and copy it from there into the bundle.
	envJSON, payloadB64 := appendEnvelopeJSON(make([]byte, 0, base64.StdEncoding.EncodedLen(len(stmt))+256), PayloadType, stmt, kp.s.KeyID(), env.GetSignatures()[0].GetSig())
	bundleJSON, ok := appendBundleJSON(make([]byte, 0, len(payloadB64)+512), b, payloadB64)
	if !ok {
		// Not the shape appendBundleJSON writes (a future sigstore-go
		// adding material): the general encoder.
		var err error
		if bundleJSON, err = protojson.Marshal(b); err != nil {
			return Attestation{}, fmt.Errorf("%w: encoding bundle: %w", ErrSigning, err)
		}
	}
	return Attestation{Statement: stmt, Bundle: bundleJSON, Envelope: envJSON}, nil
}

// dsseContent is sign.DSSEData with the PAE given (signable.pae) or built
// by pae in one allocation: sigstore-go's fmt.Sprintf copies the payload
// three times. The bytes signed are the same (TestDSSEContentPAE); the
// bundle is still sigstore-go's.
type dsseContent struct {
	*sign.DSSEData
	pae []byte // PAE(PayloadType, Data), or nil
}

func (c dsseContent) PreAuthEncoding() []byte {
	if c.pae != nil {
		return c.pae
	}
	return pae(c.PayloadType, c.Data)
}

// keypair adapts a Signer to sigstore-go's sign.Keypair, which ships only an
// ephemeral implementation.
type keypair struct {
	s       Signer
	ed      bool
	pubPEM  string
	keyHint []byte
}

var _ sign.Keypair = (*keypair)(nil)

func newKeypair(s Signer) (*keypair, error) {
	pub := s.Public()
	if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	_, ed := pub.(ed25519.PublicKey)
	return &keypair{
		s:       s,
		ed:      ed,
		pubPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		keyHint: []byte(s.KeyID()),
	}, nil
}

func (k *keypair) GetHashAlgorithm() protocommon.HashAlgorithm {
	if k.ed {
		return protocommon.HashAlgorithm_HASH_ALGORITHM_UNSPECIFIED
	}
	return protocommon.HashAlgorithm_SHA2_256
}

func (k *keypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	if k.ed {
		return protocommon.PublicKeyDetails_PKIX_ED25519
	}
	return protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256
}

func (k *keypair) GetHint() []byte { return k.keyHint }

func (k *keypair) GetKeyAlgorithm() string {
	if k.ed {
		return "ED25519"
	}
	return "ECDSA"
}

func (k *keypair) GetPublicKey() crypto.PublicKey { return k.s.Public() }

func (k *keypair) GetPublicKeyPem() (string, error) { return k.pubPEM, nil }

// SignData signs data and returns the signature and what was signed: the
// SHA-256 digest for ECDSA, data itself for pure Ed25519. For vouch's own
// ECDSA signer the digest is computed once and signed directly.
func (k *keypair) SignData(ctx context.Context, data []byte) ([]byte, []byte, error) {
	if k.ed {
		sig, err := k.s.Sign(ctx, data)
		if err != nil {
			return nil, nil, err
		}
		return sig, data, nil
	}
	d := sha256.Sum256(data)
	var (
		sig []byte
		err error
	)
	if ds, ok := k.s.(digestSigner); ok {
		sig, err = ds.signDigest(ctx, d[:])
	} else {
		sig, err = k.s.Sign(ctx, data)
	}
	if err != nil {
		return nil, nil, err
	}
	return sig, d[:], nil
}
