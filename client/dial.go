package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// ErrDial reports dial options that are refused before any connection is
// made: plaintext to a non-loopback address, half an mTLS key pair, an
// unreadable or empty token or certificate file.
var ErrDial = errors.New("invalid connection options")

// DialOptions say how to reach a vouch server.
type DialOptions struct {
	// Address is host:port. Required.
	Address string
	// TokenFile holds a bearer token (surrounding white space is trimmed)
	// sent as "authorization: Bearer <token>" on every call. Optional.
	TokenFile string
	// CAFile is a PEM bundle of CAs that sign the server's certificate.
	// Optional: the system roots when empty.
	CAFile string
	// CertFile and KeyFile are the client certificate and key for mTLS.
	// Both or neither.
	CertFile, KeyFile string
	// ServerName overrides the name checked against the server certificate.
	ServerName string
	// Plaintext turns TLS off. It is refused unless Address is a loopback
	// address (127.0.0.0/8, ::1 or "localhost"). When no TLS option is set
	// and Address is loopback, plaintext is chosen automatically.
	Plaintext bool
}

// IsLoopback reports whether the host part of address is a loopback IP or
// "localhost".
func IsLoopback(address string) bool {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		host = address
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}

// Dial returns a client connection to the server. It validates the options
// and reads the files first; the connection itself is established lazily
// by gRPC on the first call. The caller MUST Close it.
func Dial(ctx context.Context, o DialOptions) (*grpc.ClientConn, error) {
	if o.Address == "" {
		return nil, fmt.Errorf("%w: no server address", ErrDial)
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, fmt.Errorf("%w: a client certificate needs both a certificate and a key file", ErrDial)
	}
	loopback := IsLoopback(o.Address)
	tlsSet := o.CAFile != "" || o.CertFile != "" || o.ServerName != ""
	plaintext := o.Plaintext || (!tlsSet && loopback)
	if plaintext && !loopback {
		return nil, fmt.Errorf("%w: plaintext to %s: only loopback addresses may be reached without TLS", ErrDial, o.Address)
	}
	if plaintext && tlsSet {
		return nil, fmt.Errorf("%w: plaintext together with TLS options", ErrDial)
	}
	var opts []grpc.DialOption
	if plaintext {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	} else {
		cfg, err := tlsConfig(o)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	}
	if o.TokenFile != "" {
		b, err := os.ReadFile(o.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("%w: reading token file: %v", ErrDial, err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
			return nil, fmt.Errorf("%w: token file %s is empty or holds more than one token", ErrDial, o.TokenFile)
		}
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: tok, secure: !plaintext}))
	}
	_ = ctx // the connection is lazy; ctx bounds each call instead
	conn, err := grpc.NewClient(o.Address, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDial, err)
	}
	return conn, nil
}

func tlsConfig(o DialOptions) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName}
	if o.CAFile != "" {
		b, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: reading CA file: %v", ErrDial, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%w: %s holds no PEM certificate", ErrDial, o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: client certificate: %v", ErrDial, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// bearer sends a bearer token with every call.
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity is false only for loopback plaintext, which
// Dial allows nowhere else.
func (b bearer) RequireTransportSecurity() bool { return b.secure }
