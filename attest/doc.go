// Package attest builds, signs and verifies vouch's attestations: SPDX 2.3 and SLSA VSA v1 predicates in in-toto v1 Statements, DSSE-signed into Sigstore bundles.
package attest
