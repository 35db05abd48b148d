// Package ociattest attaches vouch's attestations to an image in an OCI registry, and finds them again, in both layouts deploy-time verifiers read: the legacy "sha256-<hex>.att" tag and OCI 1.1 referrers.
package ociattest
