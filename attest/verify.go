package attest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spdx/tools-golang/spdx"
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
	// SkipPredicateDecode leaves Verified.SPDX and Verified.VSA nil: the
	// predicate is still checked to be well-formed JSON of an accepted type,
	// but not decoded into the typed model. Decoding a large SPDX document
	// costs far more than verifying its signature; callers that only need
	// the verdict set this.
	SkipPredicateDecode bool
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
// (ErrPredicateType), predicate parses as its type (ErrMalformed; skipped
// with want.SkipPredicateDecode).
// Transparency-log entries and timestamps in a bundle are ignored: trust
// comes from the key alone, as with `cosign … --key --insecure-ignore-tlog`.
func Verify(data []byte, keys *KeySet, want Expect) (*Verified, error) {
	if keys == nil || len(keys.ids) == 0 {
		return nil, fmt.Errorf("%w: no trusted keys", ErrUnknownKey)
	}
	if !isHexSHA256(want.SubjectSHA256) {
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
	if err := decodeStatement(env.Payload, &out.Statement); err != nil {
		return nil, fmt.Errorf("%w: statement: %v", ErrMalformed, err)
	}
	st := &out.Statement
	if st.Type != StatementType {
		return nil, fmt.Errorf("%w: statement _type %q; want %q", ErrMalformed, st.Type, StatementType)
	}
	// in-toto Statement v1: subject is a non-empty list, predicate an object.
	if len(st.Subject) == 0 || len(st.Predicate) == 0 || st.Predicate[0] != '{' {
		return nil, fmt.Errorf("%w: statement without subject or predicate object", ErrMalformed)
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
	if st.PredicateType != PredicateTypeSPDX && st.PredicateType != PredicateTypeVSA {
		return nil, fmt.Errorf("%w: %q is neither %q nor %q", ErrPredicateType, st.PredicateType, PredicateTypeSPDX, PredicateTypeVSA)
	}
	if want.SkipPredicateDecode {
		return out, nil
	}
	switch st.PredicateType {
	case PredicateTypeSPDX:
		doc, err := decodeSPDX(st.Predicate)
		if err != nil {
			return nil, fmt.Errorf("%w: SPDX predicate: %v", ErrMalformed, err)
		}
		if doc.SPDXVersion != spdx.Version {
			return nil, fmt.Errorf("%w: SPDX predicate version %q; want %q", ErrMalformed, doc.SPDXVersion, spdx.Version)
		}
		out.SPDX = doc
	case PredicateTypeVSA:
		v := &VSA{}
		if err := json.Unmarshal(st.Predicate, v); err != nil {
			return nil, fmt.Errorf("%w: VSA predicate: %v", ErrMalformed, err)
		}
		out.VSA = v
	}
	return out, nil
}

// decodeAttestation reads a Sigstore bundle (the protobuf-specs Bundle
// message in its JSON mapping: camelCase or original field names, base64
// bytes) or a bare DSSE envelope. For a bundle, hint is the public key hint
// of its verification material. Fields Verify does not use (tlog entries,
// timestamps, unknown fields) are checked for JSON well-formedness and
// ignored.
func decodeAttestation(data []byte) (env *envelope, hint string, isBundle bool, err error) {
	var (
		mediaType, payloadType          *string
		hasMaterial, hasKey, hasMessage bool
		bundleEnv                       *envelope
		bare                            envelope
	)
	s := &jsonScanner{b: data}
	err = s.object(func(key string) error {
		switch key {
		case "mediaType", "media_type":
			v, err := s.str()
			mediaType = &v
			return err
		case "verificationMaterial", "verification_material":
			hasMaterial = true
			return s.object(func(key string) error {
				if key != "publicKey" && key != "public_key" {
					return s.skip(0)
				}
				hasKey = true
				return s.object(func(key string) error {
					if key != "hint" {
						return s.skip(0)
					}
					var err error
					hint, err = s.str()
					return err
				})
			})
		case "dsseEnvelope", "dsse_envelope":
			bundleEnv = &envelope{}
			return decodeEnvelope(s, bundleEnv)
		case "messageSignature", "message_signature":
			hasMessage = true
			return s.skip(0)
		case "payloadType", "payload_type", "payload", "signatures":
			return decodeEnvelopeField(s, key, &bare, &payloadType)
		default:
			return s.skip(0)
		}
	})
	if err == nil && !s.end() {
		err = fmt.Errorf("%w: trailing data", errJSON)
	}
	if err != nil {
		return nil, "", false, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch {
	case mediaType != nil:
		if !slices.Contains(supportedBundleMediaTypes, *mediaType) {
			return nil, "", true, fmt.Errorf("%w: bundle media type %q", ErrMalformed, *mediaType)
		}
		if !hasMaterial {
			return nil, "", true, fmt.Errorf("%w: bundle without verification material", ErrMalformed)
		}
		if !hasKey {
			return nil, "", true, fmt.Errorf("%w: bundle verification material is a certificate, not a public key hint", ErrUnknownKey)
		}
		if bundleEnv == nil || hasMessage {
			return nil, "", true, fmt.Errorf("%w: bundle content is not a DSSE envelope", ErrMalformed)
		}
		if len(bundleEnv.Signatures) != 1 {
			// Sigstore bundle: a DSSE envelope carries exactly one signature.
			return nil, "", true, fmt.Errorf("%w: bundle envelope has %d signatures; want 1", ErrMalformed, len(bundleEnv.Signatures))
		}
		return bundleEnv, hint, true, nil
	case payloadType != nil:
		if len(bare.Signatures) == 0 {
			return nil, "", false, fmt.Errorf("%w: DSSE envelope without signatures", ErrMalformed)
		}
		return &bare, "", false, nil
	default:
		return nil, "", false, fmt.Errorf("%w: neither a Sigstore bundle (mediaType) nor a DSSE envelope (payloadType)", ErrMalformed)
	}
}

// decodeEnvelope reads a DSSE envelope object into env.
func decodeEnvelope(s *jsonScanner, env *envelope) error {
	var pt *string
	return s.object(func(key string) error {
		return decodeEnvelopeField(s, key, env, &pt)
	})
}

// decodeEnvelopeField reads one DSSE envelope field (DSSE envelope.md:
// payloadType, payload (base64), signatures [{keyid, sig (base64)}]).
func decodeEnvelopeField(s *jsonScanner, key string, env *envelope, payloadType **string) error {
	var err error
	switch key {
	case "payloadType", "payload_type":
		env.PayloadType, err = s.str()
		*payloadType = &env.PayloadType
	case "payload":
		env.Payload, err = s.bytesB64()
	case "signatures":
		err = s.array(func() error {
			var sig envelopeSignature
			err := s.object(func(key string) error {
				var err error
				switch key {
				case "keyid":
					sig.KeyID, err = s.str()
				case "sig":
					sig.Sig, err = s.bytesB64()
				default:
					err = s.skip(0)
				}
				return err
			})
			env.Signatures = append(env.Signatures, sig)
			return err
		})
	default:
		err = s.skip(0)
	}
	return err
}

// decodeStatement reads an in-toto Statement v1 strictly: exactly the four
// fields, each once (in-toto Statement v1; cosign refuses anything else),
// keeping the predicate bytes as signed.
func decodeStatement(payload []byte, st *Statement) error {
	s := &jsonScanner{b: payload}
	n := 0
	err := s.object(func(key string) error {
		n++
		var err error
		switch key {
		case "_type":
			st.Type, err = s.str()
		case "predicateType":
			st.PredicateType, err = s.str()
		case "subject":
			var raw []byte
			if raw, err = s.raw(); err == nil {
				err = json.Unmarshal(raw, &st.Subject)
			}
		case "predicate":
			var raw []byte
			if raw, err = s.raw(); err == nil {
				st.Predicate = raw
			}
		default:
			err = fmt.Errorf("unknown statement field %q", key)
		}
		return err
	})
	if err == nil && !s.end() {
		err = fmt.Errorf("%w: trailing data", errJSON)
	}
	if err == nil && n != 4 {
		err = fmt.Errorf("statement has %d of its 4 fields", n)
	}
	return err
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
