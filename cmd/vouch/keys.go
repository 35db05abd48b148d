package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vouchdev/vouch/attest"
)

// newKeysCmd is `vouch keys`: manage vouch's attestation signing keys.
func newKeysCmd() *cobra.Command {
	keys := &cobra.Command{
		Use:   "keys",
		Short: "Manage attestation signing keys",
	}
	keys.AddCommand(newKeysGenerateCmd())
	return keys
}

func newKeysGenerateCmd() *cobra.Command {
	var (
		out     string
		keyType string
	)
	cmd := &cobra.Command{
		Use:   "generate --out DIR [--type ecdsa-p256|ed25519]",
		Short: "Generate a signing key pair for vouchd",
		Long: `Generate a new attestation signing key pair:

  DIR/vouch.key  private key, PKCS#8 PEM, mode 0600 (vouchd's signing_key)
  DIR/vouch.pub  public key, PKIX PEM (give it to cosign --key and to policies)

and print the key id (base64 of the SHA-256 of the public key's DER), which is
the public key hint in every bundle vouchd signs. Existing files are never
overwritten. Only ECDSA P-256 (default) and Ed25519 are offered: cosign cannot
verify key-based signatures on other curves.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out is required: the folder to write %s and %s into", attest.PrivateKeyFile, attest.PublicKeyFile)
			}
			id, err := attest.WriteKeyFiles(out, attest.KeyType(keyType))
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "private key: %s\n", filepath.Join(out, attest.PrivateKeyFile))
			fmt.Fprintf(w, "public key:  %s\n", filepath.Join(out, attest.PublicKeyFile))
			fmt.Fprintf(w, "key id:      %s\n", id)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "folder for vouch.key and vouch.pub (created with mode 0700 if missing)")
	cmd.Flags().StringVar(&keyType, "type", string(attest.KeyECDSAP256), "key type: ecdsa-p256 or ed25519")
	return cmd
}
