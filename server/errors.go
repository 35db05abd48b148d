package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vouchdev/vouch/index"
	"github.com/vouchdev/vouch/store"
)

// Errors the handlers return; toStatus maps them to gRPC codes.
var (
	// ErrInvalidArgument is wrapped by every *FieldError.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrOverLimit reports a request over a configured limit.
	ErrOverLimit = errors.New("over limit")
	// ErrNotFound reports that the requested object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable reports that vouch cannot answer now (e.g. shutting down).
	ErrUnavailable = errors.New("unavailable")
)

// FieldError is a malformed request: which field, which value, what was
// expected. Its message is safe to show to the caller.
type FieldError struct {
	Field    string // e.g. "packages[3].checksum"
	Value    string // the offending value, truncated
	Expected string // what would have been accepted
}

func (e *FieldError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Expected)
	}
	return fmt.Sprintf("%s: %q: %s", e.Field, e.Value, e.Expected)
}

// Unwrap makes errors.Is(err, ErrInvalidArgument) true.
func (e *FieldError) Unwrap() error { return ErrInvalidArgument }

func fieldErr(field, value, expected string) *FieldError {
	return &FieldError{Field: field, Value: clip(value), Expected: expected}
}

func clip(s string) string {
	const max = 100
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// toStatus is the one place where errors become gRPC statuses. Callers get a
// clean, specific message; anything unexpected becomes Internal with only
// the request id, and the full error goes to the log.
func toStatus(ctx context.Context, log *slog.Logger, method string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err // already a status (from grpc itself)
	}
	var fe *FieldError
	switch {
	case errors.As(err, &fe):
		return status.Error(codes.InvalidArgument, fe.Error())
	case errors.Is(err, ErrUnauthenticated):
		return status.Error(codes.Unauthenticated, err.Error())
	case errors.Is(err, ErrPermissionDenied):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, ErrNotFound), errors.Is(err, store.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, index.ErrUnknownRepository):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ErrOverLimit):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, ErrUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	}
	rid := requestID(ctx)
	log.ErrorContext(ctx, "internal error", "method", method, "request_id", rid, "err", err)
	return status.Errorf(codes.Internal, "internal error (request id %s); nothing was issued", rid)
}
