package index

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// fetchResult is one delivered index file, or a 304.
type fetchResult struct {
	body         []byte
	notModified  bool
	etag         string
	lastModified string
}

// conditional carries the validators of the current snapshot.
type conditional struct {
	etag, lastModified string
}

func (c conditional) empty() bool { return c.etag == "" && c.lastModified == "" }

var errHeaderTimeout = errors.New("no response headers within the header timeout")

// httpClient builds the client of one repository: connect and TLS
// handshake bounded by ConnectTimeout, headers by HeaderTimeout, optional
// private CA bundle.
func (c *Cache) httpClient(rc RepositoryConfig) (*http.Client, error) {
	if c.cfg.HTTPClient != nil {
		return c.cfg.HTTPClient, nil
	}
	if c.cfg.Transport != nil {
		return &http.Client{Transport: c.cfg.Transport}, nil
	}
	roots := rc.RootCAs
	if len(rc.CABundlePEM) > 0 {
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(rc.CABundlePEM) {
			return nil, fmt.Errorf("%w: repository %q: CA bundle has no certificate", ErrInvalidConfig, rc.Name)
		}
	}
	dialer := &net.Dialer{Timeout: c.cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   c.cfg.ConnectTimeout,
		ResponseHeaderTimeout: c.cfg.HeaderTimeout,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
		DisableCompression:    true, // the file is gzip already; never let the transport inflate it
	}
	return &http.Client{Transport: tr}, nil
}

// fetch downloads rawURL with retries (exponential backoff, full jitter)
// on transient failures. Every error wraps ErrFetch, ErrTimeout or
// ErrTooLarge.
func (c *Cache) fetch(ctx context.Context, s *stream, rawURL string, cond conditional) (fetchResult, error) {
	attempts := 1 + max(c.cfg.Retries, 0)
	var err error
	for a := range attempts {
		if a > 0 {
			d := c.cfg.RetryBackoff << (a - 1)
			if d > c.cfg.MaxBackoff || d <= 0 {
				d = c.cfg.MaxBackoff
			}
			wait := time.Duration(rand.Int64N(int64(d) + 1))
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return fetchResult{}, fmt.Errorf("%w: %s: %w (after: %w)", ErrFetch, rawURL, ctx.Err(), err)
			case <-t.C:
			}
		}
		var fr fetchResult
		var retry bool
		var label string
		fr, label, retry, err = c.fetchOnce(ctx, s, rawURL, cond)
		c.metrics.fetch(s, label, len(fr.body))
		if err == nil {
			return fr, nil
		}
		if !retry || ctx.Err() != nil {
			break
		}
	}
	return fetchResult{}, err
}

// fetchOnce makes one attempt. label is the metric result; retry reports a
// transient failure.
func (c *Cache) fetchOnce(ctx context.Context, s *stream, rawURL string, cond conditional) (fr fetchResult, label string, retry bool, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fr, "error", false, fmt.Errorf("%w: %q: %v", ErrFetch, rawURL, err)
	}
	if u.Scheme == "file" {
		return c.fetchFile(u.Path)
	}
	actx, cancel := context.WithTimeout(ctx, c.cfg.BodyTimeout)
	defer cancel()
	hctx, hcancel := context.WithCancelCause(actx)
	defer hcancel(nil)
	req, err := http.NewRequestWithContext(hctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fr, "error", false, fmt.Errorf("%w: %s: %v", ErrFetch, rawURL, err)
	}
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	req.Header.Set("Accept-Encoding", "identity")
	if cond.etag != "" {
		req.Header.Set("If-None-Match", cond.etag)
	}
	if cond.lastModified != "" {
		req.Header.Set("If-Modified-Since", cond.lastModified)
	}
	timer := time.AfterFunc(c.cfg.HeaderTimeout, func() { hcancel(errHeaderTimeout) })
	resp, err := s.repo.client.Do(req)
	headersInTime := timer.Stop()
	if err != nil {
		if errors.Is(context.Cause(hctx), errHeaderTimeout) || actx.Err() != nil || isTimeout(err) {
			return fr, "timeout", ctx.Err() == nil, fmt.Errorf("%w: %s: %v", ErrTimeout, rawURL, err)
		}
		return fr, "network_error", true, fmt.Errorf("%w: %s: %v", ErrFetch, rawURL, err)
	}
	defer resp.Body.Close()
	if !headersInTime {
		return fr, "timeout", true, fmt.Errorf("%w: %s: %v", ErrTimeout, rawURL, errHeaderTimeout)
	}
	switch {
	case resp.StatusCode == http.StatusNotModified:
		if cond.empty() {
			return fr, "http_error", false, fmt.Errorf("%w: %s: 304 Not Modified to an unconditional request", ErrFetch, rawURL)
		}
		return fetchResult{notModified: true, etag: cond.etag, lastModified: cond.lastModified}, "not_modified", false, nil
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		return fr, "http_error", true, fmt.Errorf("%w: %s: HTTP %s", ErrFetch, rawURL, resp.Status)
	default:
		return fr, "http_error", false, fmt.Errorf("%w: %s: HTTP %s", ErrFetch, rawURL, resp.Status)
	}
	limit := c.cfg.MaxBodyBytes
	if resp.ContentLength > limit {
		return fr, "too_large", false, fmt.Errorf("%w: %s: Content-Length %d over the limit of %d bytes", ErrTooLarge, rawURL, resp.ContentLength, limit)
	}
	var buf bytes.Buffer
	if resp.ContentLength > 0 {
		buf.Grow(int(resp.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		if actx.Err() != nil || isTimeout(err) {
			return fr, "timeout", ctx.Err() == nil, fmt.Errorf("%w: %s: reading body after %d bytes: %v", ErrTimeout, rawURL, n, err)
		}
		return fr, "network_error", true, fmt.Errorf("%w: %s: reading body after %d bytes: %v", ErrFetch, rawURL, n, err)
	}
	if n > limit {
		return fr, "too_large", false, fmt.Errorf("%w: %s: body over the limit of %d bytes", ErrTooLarge, rawURL, limit)
	}
	return fetchResult{body: buf.Bytes(), etag: resp.Header.Get("ETag"), lastModified: resp.Header.Get("Last-Modified")}, "ok", false, nil
}

// fetchFile reads a local index. A file has no validators: an unchanged
// file is recognised by its sha256 instead (still without parsing).
func (c *Cache) fetchFile(path string) (fr fetchResult, label string, retry bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return fr, "file_error", false, fmt.Errorf("%w: %v", ErrFetch, err)
	}
	defer f.Close()
	limit := c.cfg.MaxBodyBytes
	if fi, err := f.Stat(); err == nil && fi.Size() > limit {
		return fr, "too_large", false, fmt.Errorf("%w: %s is %d bytes, over the limit of %d", ErrTooLarge, path, fi.Size(), limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return fr, "file_error", false, fmt.Errorf("%w: %v", ErrFetch, err)
	}
	if int64(len(b)) > limit {
		return fr, "too_large", false, fmt.Errorf("%w: %s over the limit of %d bytes", ErrTooLarge, path, limit)
	}
	return fetchResult{body: b}, "ok", false, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
