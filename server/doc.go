// Package server implements vouch's gRPC services — builder, reader and admin — with validation, authentication, the single error-to-status mapping, metrics and health.
package server
