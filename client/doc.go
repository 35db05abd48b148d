// Package client is the builder side of vouch: it turns .apk files, apko lock files, root filesystems and OCI images into package claims, asks a vouch server to verify them, and writes or attaches the attestations it returns.
package client
