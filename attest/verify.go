package attest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
	"google.golang.org/protobuf/encoding/protojson"
)

// Errors returned by Verify. Every one is a refusal; callers MUST NOT fall
// back to trusting the content. They are distinct so that a deploy-time
// check can say why.
var (
	// ErrMalformed: not a Sigstore bundle or DSSE envelope vouch understands,
	// or a payload that is not an in-toto Statement v1, or a predicate that
	// does not parse as its type.
	ErrMalformed = errors.New("malformed attestation")
	// ErrUnknownKey: signed (or claimed to be signed) by a key that is not
	// among the trusted keys, or verification material other than a key.
	ErrUnknownKey = errors.New("attestation signed by an untrusted key")
	// ErrBadSignature: the signature does not verify with the trusted key
	// it names (or, without a key id, with any trusted key): tampered or
	// forged.
	ErrBadSignature = errors.New("attestation signature does not verify")
	// ErrSubjectMismatch: validly signed, but about another artifact.
	ErrSubjectMismatch = errors.New("attestation subject does not match")
	// ErrPredicateType: validly signed, but not the predicate type asked
	// for, or one vouch does not know.
	ErrPredicateType = errors.New("unexpected attestation predicate type")
)

// maxAttestation bounds the input Verify accepts.
const maxAttestation = 64 << 20

// supportedBundleMediaTypes are the Sigstore bundle versions Verify reads.
var supportedBundleMediaTypes = []string{
	"application/vnd.dev.sigstore.bundle+json;version=0.1",
	"application/vnd.dev.sigstore.bundle+json;version=0.2",
	"application/vnd.dev.sigstore.bundle+json;version=0.3",
	"application/vnd.dev.sigstore.bundle.v0.3+json",
}

// Expect is what the verified attestation must be about.
type Expect struct {
	// SubjectSHA256 is the lower-case hex sha256 that one statement subject
	// MUST carry. Required.
	SubjectSHA256 string
	// PredicateType, when set, is the only predicate type accepted; when
	// empty, PredicateTypeSPDX and PredicateTypeVSA are.
	PredicateType string
}

// Verified is a verified attestation.
type Verified struct {
	// KeyID is the id of the trusted key whose signature verified.
	KeyID string
	// Bundle is true for a Sigstore bundle, false for a bare DSSE envelope.
	Bundle bool
	// Statement is the signed statement; Statement.Predicate holds the
	// predicate bytes as signed.
	Statement Statement
	// SPDX is the parsed predicate when PredicateType is PredicateTypeSPDX.
	SPDX *spdx.Document
	// VSA is the parsed predicate when PredicateType is PredicateTypeVSA.
	VSA *VSA
}

// KeySet holds trusted public keys by key id. It is immutable after
// construction and safe for concurrent use.
type KeySet struct {
	keys map[string]crypto.PublicKey
	ids  []string // sorted, for a stable try-all order
}

// NewKeySet returns a KeySet of ECDSA P-256 and Ed25519 public keys
// (ErrUnsupportedKey otherwise).
func NewKeySet(keys ...crypto.PublicKey) (*KeySet, error) {
	ks := &KeySet{keys: make(map[string]crypto.PublicKey, len(keys))}
	for _, k := range keys {
		if err := checkPublicKey(k); err != nil {
			return nil, err
		}
		id, err := KeyID(k)
		if err != nil {
			return nil, err
		}
		if _, dup := ks.keys[id]; !dup {
			ks.ids = append(ks.ids, id)
		}
		ks.keys[id] = k
	}
	slices.Sort(ks.ids)
	return ks, nil
}

// NewKeySetPEM is NewKeySet over PKIX PEM public keys.
func NewKeySetPEM(pems ...[]byte) (*KeySet, error) {
	keys := make([]crypto.PublicKey, 0, len(pems))
	for _, p := range pems {
		k, err := ParsePublicKeyPEM(p)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return NewKeySet(keys...)
}

// IDs returns the key ids in the set, sorted.
func (ks *KeySet) IDs() []string { return slices.Clone(ks.ids) }

// Verify checks data — a Sigstore bundle (JSON, v0.1–v0.3, public-key
// verification material) or a bare DSSE envelope (JSON) — against keys and
// want, in this order: well-formed (ErrMalformed), signed by a trusted key
// (ErrUnknownKey), signature over the DSSE PAE verifies (ErrBadSignature),
// payload is an in-toto Statement v1 (ErrMalformed), one subject has
// want.SubjectSHA256 (ErrSubjectMismatch), predicate type is wanted
// (ErrPredicateType), predicate parses as its type (ErrMalformed).
// Transparency-log entries and timestamps in a bundle are ignored: trust
// comes from the key alone, as with `cosign … --key --insecure-ignore-tlog`.
func Verify(data []byte, keys *KeySet, want Expect) (*Verified, error) {
	if keys == nil || len(keys.ids) == 0 {
		return nil, fmt.Errorf("%w: no trusted keys", ErrUnknownKey)
	}
	if !hexSHA256.MatchString(want.SubjectSHA256) {
		return nil, invalid("expected subject sha256 %q is not 64 lower-case hex characters", want.SubjectSHA256)
	}
	if len(data) > maxAttestation {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrMalformed, len(data), maxAttestation)
	}

	env, hint, isBundle, err := decodeAttestation(data)
	if err != nil {
		return nil, err
	}
	keyID, err := verifyEnvelope(env, hint, keys)
	if err != nil {
		return nil, err
	}
	if env.PayloadType != PayloadType {
		return nil, fmt.Errorf("%w: payloadType %q; want %q", ErrMalformed, env.PayloadType, PayloadType)
	}

	out := &Verified{KeyID: keyID, Bundle: isBundle}
	dec := json.NewDecoder(bytes.NewReader(env.Payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out.Statement); err != nil {
		return nil, fmt.Errorf("%w: statement: %v", ErrMalformed, err)
	}
	st := &out.Statement
	if st.Type != StatementType {
		return nil, fmt.Errorf("%w: statement _type %q; want %q", ErrMalformed, st.Type, StatementType)
	}
	if len(st.Predicate) == 0 || len(st.Subject) == 0 {
		return nil, fmt.Errorf("%w: statement without subject or predicate", ErrMalformed)
	}
	// in-toto Statement v1: a consumer matches the artifact against the
	// subject's digest set; the name is informational.
	matched := false
	for _, s := range st.Subject {
		if strings.EqualFold(s.Digest["sha256"], want.SubjectSHA256) {
			matched = true
			break
		}
	}
	if !matched {
		return nil, fmt.Errorf("%w: no subject has sha256 %s", ErrSubjectMismatch, want.SubjectSHA256)
	}
	if want.PredicateType != "" && st.PredicateType != want.PredicateType {
		return nil, fmt.Errorf("%w: %q; want %q", ErrPredicateType, st.PredicateType, want.PredicateType)
	}
	switch st.PredicateType {
	case PredicateTypeSPDX:
		doc := &spdx.Document{}
		if err := spdxjson.ReadInto(bytes.NewReader(st.Predicate), doc); err != nil {
			return nil, fmt.Errorf("%w: SPDX predicate: %v", ErrMalformed, err)
		}
		out.SPDX = doc
	case PredicateTypeVSA:
		v := &VSA{}
		if err := json.Unmarshal(st.Predicate, v); err != nil {
			return nil, fmt.Errorf("%w: VSA predicate: %v", ErrMalformed, err)
		}
		out.VSA = v
	default:
		return nil, fmt.Errorf("%w: %q is neither %q nor %q", ErrPredicateType, st.PredicateType, PredicateTypeSPDX, PredicateTypeVSA)
	}
	return out, nil
}

// decodeAttestation reads a bundle or an envelope. For a bundle, hint is the
// public key hint of its verification material.
func decodeAttestation(data []byte) (env *envelope, hint string, isBundle bool, err error) {
	var probe struct {
		MediaType   *string `json:"mediaType"`
		PayloadType *string `json:"payloadType"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, "", false, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch {
	case probe.MediaType != nil:
		if !slices.Contains(supportedBundleMediaTypes, *probe.MediaType) {
			return nil, "", true, fmt.Errorf("%w: bundle media type %q", ErrMalformed, *probe.MediaType)
		}
		var b protobundle.Bundle
		if err := protojson.Unmarshal(data, &b); err != nil {
			return nil, "", true, fmt.Errorf("%w: bundle: %v", ErrMalformed, err)
		}
		vm := b.GetVerificationMaterial()
		if vm == nil {
			return nil, "", true, fmt.Errorf("%w: bundle without verification material", ErrMalformed)
		}
		pk := vm.GetPublicKey()
		if pk == nil {
			return nil, "", true, fmt.Errorf("%w: bundle verification material is a certificate, not a public key hint", ErrUnknownKey)
		}
		de := b.GetDsseEnvelope()
		if de == nil {
			return nil, "", true, fmt.Errorf("%w: bundle content is not a DSSE envelope", ErrMalformed)
		}
		env = &envelope{PayloadType: de.GetPayloadType(), Payload: de.GetPayload()}
		for _, s := range de.GetSignatures() {
			env.Signatures = append(env.Signatures, envelopeSignature{KeyID: s.GetKeyid(), Sig: s.GetSig()})
		}
		if len(env.Signatures) != 1 {
			// Sigstore bundle v0.3: a DSSE envelope MUST carry exactly one signature.
			return nil, "", true, fmt.Errorf("%w: bundle envelope has %d signatures; want 1", ErrMalformed, len(env.Signatures))
		}
		return env, pk.GetHint(), true, nil
	case probe.PayloadType != nil:
		env = &envelope{}
		if err := json.Unmarshal(data, env); err != nil {
			return nil, "", false, fmt.Errorf("%w: DSSE envelope: %v", ErrMalformed, err)
		}
		if len(env.Signatures) == 0 {
			return nil, "", false, fmt.Errorf("%w: DSSE envelope without signatures", ErrMalformed)
		}
		return env, "", false, nil
	default:
		return nil, "", false, fmt.Errorf("%w: neither a Sigstore bundle (mediaType) nor a DSSE envelope (payloadType)", ErrMalformed)
	}
}

// verifyEnvelope accepts the envelope when one signature verifies over
// PAE(payloadType, payload) with a trusted key (DSSE protocol.md,
// "Verification"). A signature's key is its keyid, else the bundle hint;
// with neither, every trusted key is tried. It returns the verifying key id.
func verifyEnvelope(env *envelope, hint string, keys *KeySet) (string, error) {
	msg := pae(env.PayloadType, env.Payload)
	var digest []byte // SHA-256(PAE), computed once for ECDSA keys
	tried := false
	var unknown []string
	for _, s := range env.Signatures {
		id := s.KeyID
		if id == "" {
			id = hint
		}
		candidates := keys.ids
		if id != "" {
			if _, ok := keys.keys[id]; !ok {
				unknown = append(unknown, id)
				continue
			}
			candidates = []string{id}
		}
		for _, cid := range candidates {
			tried = true
			switch k := keys.keys[cid].(type) {
			case *ecdsa.PublicKey:
				if digest == nil {
					d := sha256.Sum256(msg)
					digest = d[:]
				}
				if ecdsa.VerifyASN1(k, digest, s.Sig) {
					return cid, nil
				}
			case ed25519.PublicKey:
				if len(s.Sig) == ed25519.SignatureSize && ed25519.Verify(k, msg, s.Sig) {
					return cid, nil
				}
			}
		}
	}
	if !tried {
		return "", fmt.Errorf("%w: key id %s is not trusted", ErrUnknownKey, strings.Join(unknown, ", "))
	}
	return "", ErrBadSignature
}
