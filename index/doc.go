// Package index keeps verified, signed APKINDEX snapshots per repository and architecture: it fetches, verifies, refreshes, persists and answers lookups.
package index
