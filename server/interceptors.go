package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type requestIDKey struct{}

// requestID returns the id the interceptor gave this request ("" outside).
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// newRequestID takes a caller-supplied x-request-id when it is short and
// printable, else makes a random one.
func newRequestID(ctx context.Context) string {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("x-request-id"); len(v) == 1 && len(v[0]) > 0 && len(v[0]) <= 64 && printable(v[0]) {
			return v[0]
		}
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// unaryInterceptor runs, in order: request id, panic recovery, auth, the
// handler, the error mapping, then metrics and the access log. Keeping them
// in one function makes the order explicit and costs one closure per call.
func (s *Server) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	rid := newRequestID(ctx)
	ctx = context.WithValue(ctx, requestIDKey{}, rid)
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-request-id", rid))
	caller, authErr := s.auth.authenticate(ctx)
	if authErr == nil {
		authErr = authorize(caller, info.FullMethod)
	}
	if authErr != nil {
		err = authErr
	} else {
		ctx = withCaller(ctx, caller)
		resp, err = s.callRecovering(ctx, req, info, handler)
	}
	err = toStatus(ctx, s.log, info.FullMethod, err)
	code := status.Code(err)
	elapsed := time.Since(start)
	s.metrics.observeRPC(info.FullMethod, code, elapsed)
	if s.log.Enabled(ctx, slog.LevelInfo) && !isHealth(info.FullMethod) {
		attrs := []slog.Attr{
			slog.String("method", info.FullMethod),
			slog.String("code", code.String()),
			slog.Duration("elapsed", elapsed),
			slog.String("request_id", rid),
		}
		if caller.Identity != "" {
			attrs = append(attrs, slog.String("identity", caller.Identity))
		}
		if err != nil {
			attrs = append(attrs, slog.String("error", status.Convert(err).Message()))
		}
		s.log.LogAttrs(ctx, slog.LevelInfo, "rpc", attrs...)
	}
	return resp, err
}

func (s *Server) callRecovering(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.metrics.panics.Inc()
			s.log.ErrorContext(ctx, "panic in handler", "method", info.FullMethod, "request_id", requestID(ctx), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			resp, err = nil, fmt.Errorf("panic in %s: %v", info.FullMethod, p)
		}
	}()
	return handler(ctx, req)
}

// streamInterceptor authenticates streaming calls (reflection and health
// watch are the only streams; both are open).
func (s *Server) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	caller, err := s.auth.authenticate(ss.Context())
	if err == nil {
		err = authorize(caller, info.FullMethod)
	}
	if err != nil && !isOpen(info.FullMethod) {
		return toStatus(ss.Context(), s.log, info.FullMethod, err)
	}
	return handler(srv, ss)
}

func isHealth(fullMethod string) bool { return serviceOf(fullMethod) == "grpc.health.v1.Health" }

func isOpen(fullMethod string) bool {
	svc := serviceOf(fullMethod)
	for _, o := range openServices {
		if o == svc {
			return true
		}
	}
	return false
}
