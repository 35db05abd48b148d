// Command setup prepares a load-test environment for vouchd: a signed repository with generated packages, vouch keys, a configuration and ghz request files.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vouchdev/vouch/apk"
	"github.com/vouchdev/vouch/attest"
	"github.com/vouchdev/vouch/internal/testrepo"
	vouchv1 "github.com/vouchdev/vouch/proto/vouch/v1"
)

func main() {
	dir := flag.String("dir", "", "output directory (required)")
	packages := flag.Int("packages", 1000, "packages in the repository")
	extra := flag.Int("index-entries", 0, "extra generated index entries (repository size)")
	store := flag.String("store", "", "store URL (default sqlite in dir)")
	listen := flag.String("listen", "127.0.0.1:7443", "vouchd listen address; a comma-separated list writes one configuration per replica")
	metrics := flag.String("metrics", "127.0.0.1:9464", "vouchd metrics address; a comma-separated list, one per replica like --listen")
	flag.Parse()
	if *dir == "" {
		log.Fatal("setup: --dir is required")
	}
	listens, metricsAddrs := strings.Split(*listen, ","), strings.Split(*metrics, ",")
	if len(listens) != len(metricsAddrs) {
		log.Fatalf("setup: --listen has %d addresses but --metrics %d; want one of each per replica", len(listens), len(metricsAddrs))
	}
	if err := run(*dir, *packages, *extra, *store, listens, metricsAddrs); err != nil {
		log.Fatalf("setup: %v", err)
	}
}

type claim struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	Arch       string `json:"arch"`
	Repository string `json:"repository"`
	Checksum   string `json:"checksum"`
}

// configName is the configuration file of replica i: vouch.yaml for the
// first, vouch-<i>.yaml for the others.
func configName(i int) string {
	if i == 0 {
		return "vouch.yaml"
	}
	return fmt.Sprintf("vouch-%d.yaml", i)
}

func run(dir string, n, extra int, store string, listens, metricsAddrs []string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	repoDir := filepath.Join(dir, "repo")
	key, err := testrepo.NewKey("load.rsa.pub", 2048)
	if err != nil {
		return err
	}
	var entries []apk.Entry
	var claims []claim
	for i := range n {
		b, err := testrepo.Package{Name: fmt.Sprintf("pkg-%05d", i), Version: "1.0.0-r0", Arch: "x86_64"}.Build()
		if err != nil {
			return err
		}
		entries = append(entries, b.Entry)
		claims = append(claims, claim{b.Entry.Name, b.Entry.Version, "x86_64", "file://" + repoDir, b.Checksum.String()})
	}
	entries = append(entries, testrepo.GenerateEntries(extra, "x86_64", 1)...)
	idx, err := testrepo.Index{Entries: entries, Signers: []testrepo.Signer{{Key: key}}}.Build()
	if err != nil {
		return err
	}
	if err := testrepo.WriteRepo(repoDir, "x86_64", idx); err != nil {
		return err
	}
	if err := testrepo.WriteKeys(filepath.Join(dir, "keys"), key); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, attest.PrivateKeyFile)); os.IsNotExist(err) {
		if _, err := attest.WriteKeyFiles(dir, attest.KeyECDSAP256); err != nil {
			return err
		}
	}
	if store == "" {
		store = "sqlite://" + filepath.Join(dir, "vouch.db")
	}
	for i := range listens {
		cfg := fmt.Sprintf(`listen: %s
metrics_listen: %s
store: %s
signing_key: %s
log: {format: json, level: warn}
repositories:
  - name: load
    url: file://%s
    keys: [%s]
    architectures: [x86_64]
    refresh: 1h
    max_age: 24h
    distro: wolfi
`, listens[i], metricsAddrs[i], store, filepath.Join(dir, attest.PrivateKeyFile), repoDir, filepath.Join(dir, "keys", key.Name))
		if err := os.WriteFile(filepath.Join(dir, configName(i)), []byte(cfg), 0o600); err != nil {
			return err
		}
	}
	for _, size := range []int{50, 1000} {
		if size > len(claims) {
			continue
		}
		for _, attestIt := range []bool{false, true} {
			req := map[string]any{
				"subjects": []any{map[string]any{"name": "registry.example/load", "digest": map[string]string{"sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}},
				"packages": claims[:size],
				"options":  map[string]bool{"attest": attestIt},
			}
			b, err := json.Marshal(req)
			if err != nil {
				return err
			}
			name := fmt.Sprintf("verify-%d.json", size)
			if attestIt {
				name = fmt.Sprintf("attest-%d.json", size)
			}
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				return err
			}
			// The same request serialised, for ghz --binary-file: ghz
			// then sends it as it is instead of building it from JSON on
			// every call.
			var msg vouchv1.VerifyPackagesRequest
			if err := protojson.Unmarshal(b, &msg); err != nil {
				return fmt.Errorf("request %s: %w", name, err)
			}
			bin, err := proto.Marshal(&msg)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, strings.TrimSuffix(name, ".json")+".bin"), bin, 0o644); err != nil {
				return err
			}
		}
	}
	fmt.Println(dir)
	return nil
}
