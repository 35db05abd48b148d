package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/vouchdev/vouch/internal/config"
	vouchv1 "github.com/vouchdev/vouch/proto/vouch/v1"
	"github.com/vouchdev/vouch/server/servertest"
)

func withToken(tok string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
}

func TestTokenAuth(t *testing.T) {
	e := servertest.Start(t, servertest.Options{Tokens: map[string][]string{
		"ci-builder": {"builder"},
		"auditor":    {"reader"},
		"secops":     {"admin"},
	}})
	req := &vouchv1.VerifyPackagesRequest{
		Subjects: []*vouchv1.Subject{servertest.Subject("app")},
		Packages: e.Claims(),
		Options:  &vouchv1.VerifyOptions{Attest: true},
	}
	revoke := &vouchv1.RevokeChecksumRequest{Checksum: e.Packages["hello"].Checksum.String(), Reason: "test"}
	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"no token", func() error { _, err := e.Builder.VerifyPackages(context.Background(), req); return err }, codes.Unauthenticated},
		{"wrong token", func() error { _, err := e.Builder.VerifyPackages(withToken("vouch_nope"), req); return err }, codes.Unauthenticated},
		{"malformed header", func() error {
			ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Basic abc")
			_, err := e.Builder.VerifyPackages(ctx, req)
			return err
		}, codes.Unauthenticated},
		{"builder calls admin", func() error { _, err := e.Admin.RevokeChecksum(withToken(e.Tokens["ci-builder"]), revoke); return err }, codes.PermissionDenied},
		{"reader calls builder", func() error { _, err := e.Builder.VerifyPackages(withToken(e.Tokens["auditor"]), req); return err }, codes.PermissionDenied},
		{"reader reads", func() error {
			_, err := e.Reader.GetPublicKeys(withToken(e.Tokens["auditor"]), &vouchv1.GetPublicKeysRequest{})
			return err
		}, codes.OK},
		{"admin revokes", func() error { _, err := e.Admin.RevokeChecksum(withToken(e.Tokens["secops"]), revoke); return err }, codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := status.Code(tt.call()); got != tt.want {
				t.Errorf("code = %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := e.Admin.UnrevokeChecksum(withToken(e.Tokens["secops"]), &vouchv1.UnrevokeChecksumRequest{Checksum: revoke.Checksum, Reason: "test over"}); err != nil {
		t.Fatal(err)
	}
	// The builder's identity is recorded in the ledger.
	resp, err := e.Builder.VerifyPackages(withToken(e.Tokens["ci-builder"]), req)
	if err != nil || resp.GetLedgerId() == "" {
		t.Fatalf("VerifyPackages as builder: %v %v", resp.GetResults(), err)
	}
	got, err := e.Reader.GetLedgerEntry(withToken(e.Tokens["auditor"]), &vouchv1.GetLedgerEntryRequest{Id: resp.GetLedgerId()})
	if err != nil || got.GetEntry().GetIdentity() != "ci-builder" {
		t.Errorf("ledger identity = %q, %v; want ci-builder", got.GetEntry().GetIdentity(), err)
	}
}

// pki is a test CA with helpers to issue certificates.
type pki struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, cn string) *pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &pki{cert: c, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (p *pki) issue(t *testing.T, cn string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "vouch test CA")
	other := newCA(t, "someone else's CA")
	srvCert, srvKey := ca.issue(t, "vouchd", true)
	tlsCfg := &config.TLS{
		Cert:              writeFile(t, dir, "server.pem", srvCert),
		Key:               writeFile(t, dir, "server.key", srvKey),
		ClientCA:          writeFile(t, dir, "ca.pem", ca.pem),
		RequireClientCert: true,
	}
	e := servertest.Start(t, servertest.Options{Config: func(c *config.Config) {
		c.TLS = tlsCfg
		c.Auth = &config.Auth{ClientCertificates: []config.Identity{{Identity: "builder-1", Roles: []string{"builder"}}}}
	}})
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	dial := func(t *testing.T, certPEM, keyPEM []byte) vouchv1.BuilderServiceClient {
		t.Helper()
		tc := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
		if certPEM != nil {
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		conn, err := grpc.NewClient(e.Addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return vouchv1.NewBuilderServiceClient(conn)
	}
	req := &vouchv1.VerifyPackagesRequest{Subjects: []*vouchv1.Subject{servertest.Subject("app")}, Packages: e.Claims(), Options: &vouchv1.VerifyOptions{Attest: true}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("known CA, known identity", func(t *testing.T) {
		c, k := ca.issue(t, "builder-1", false)
		resp, err := dial(t, c, k).VerifyPackages(ctx, req)
		if err != nil || resp.GetLedgerId() == "" {
			t.Fatalf("VerifyPackages: %v %v", err, resp.GetResults())
		}
		got, err := e.Daemon.Store.Attestation(ctx, resp.GetLedgerId())
		if err != nil || got.Builder != "builder-1" {
			t.Errorf("ledger builder = %q, %v", got.Builder, err)
		}
	})
	t.Run("unknown CA", func(t *testing.T) {
		c, k := other.issue(t, "builder-1", false)
		_, err := dial(t, c, k).VerifyPackages(ctx, req)
		if code := status.Code(err); code != codes.Unavailable {
			t.Errorf("code = %v (%v), want Unavailable (handshake refused)", code, err)
		}
	})
	t.Run("no client certificate", func(t *testing.T) {
		_, err := dial(t, nil, nil).VerifyPackages(ctx, req)
		if code := status.Code(err); code != codes.Unavailable {
			t.Errorf("code = %v (%v), want Unavailable (handshake refused)", code, err)
		}
	})
	t.Run("known CA, identity without roles", func(t *testing.T) {
		c, k := ca.issue(t, "stranger", false)
		_, err := dial(t, c, k).VerifyPackages(ctx, req)
		if code := status.Code(err); code != codes.PermissionDenied {
			t.Errorf("code = %v (%v), want PermissionDenied", code, err)
		}
	})
}
