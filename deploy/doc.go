// Package deploy is the deploy-time side of vouch: it finds and verifies vouch's attestations for an image or a bundle file and checks that the image's installed packages are the ones attested.
package deploy
