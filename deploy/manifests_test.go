package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/vouchdev/vouch/attest"
	"github.com/vouchdev/vouch/internal/config"
)

// examplePublicKey is the fixed example key every manifest and policy
// carries (only its public half exists).
const examplePublicKey = "examples/vouch.pub"

// yamlDocs parses every YAML document of every .yaml file under the deploy
// folder.
func yamlDocs(t *testing.T) map[string][]map[string]any {
	t.Helper()
	out := map[string][]map[string]any{}
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Errorf("%s: %v", p, err)
				break
			}
			if doc == nil {
				t.Errorf("%s: empty document", p)
				continue
			}
			out[p] = append(out[p], doc)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// get walks a path of map keys and list indexes ("spec.authorities.0").
func get(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		switch n := v.(type) {
		case map[string]any:
			v = n[k]
		case []any:
			i := 0
			for _, c := range k {
				i = i*10 + int(c-'0')
			}
			if i >= len(n) {
				return nil
			}
			v = n[i]
		default:
			return nil
		}
	}
	return v
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

func TestManifestsParse(t *testing.T) {
	docs := yamlDocs(t)
	if len(docs) < 8 {
		t.Fatalf("found %d YAML files; want the Kubernetes, policy and example files", len(docs))
	}
	for p, ds := range docs {
		if strings.HasPrefix(p, "examples/") {
			continue
		}
		for i, d := range ds {
			for _, f := range []string{"apiVersion", "kind", "metadata.name"} {
				if s, _ := get(d, f).(string); s == "" {
					t.Errorf("%s document %d: no %s", p, i, f)
				}
			}
		}
	}
}

func TestManifestsCarryKeyAndPredicateType(t *testing.T) {
	pubPEM, err := os.ReadFile(examplePublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := attest.ParsePublicKeyPEM(pubPEM); err != nil {
		t.Fatalf("%s: %v", examplePublicKey, err)
	}
	wantKey := strings.TrimSpace(string(pubPEM))
	cue, err := os.ReadFile("policy/vouch-spdx.cue")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cue), `predicateType!: "`+attest.PredicateTypeSPDX+`"`) {
		t.Errorf("policy/vouch-spdx.cue does not require predicateType %q", attest.PredicateTypeSPDX)
	}
	cueBody := cueWithoutComments(string(cue))

	kinds := map[string]int{}
	for p, ds := range yamlDocs(t) {
		for _, d := range ds {
			kind, _ := d["kind"].(string)
			kinds[kind]++
			switch kind {
			case "ClusterImagePolicy":
				auths := list(get(d, "spec.authorities"))
				if len(auths) == 0 {
					t.Errorf("%s: no authorities", p)
				}
				for i, a := range auths {
					if got := strings.TrimSpace(str(get(a, "key.data"))); got != wantKey {
						t.Errorf("%s authorities[%d].key.data = %q; want the example key", p, i, got)
					}
					if get(a, "ctlog") != nil {
						t.Errorf("%s authorities[%d]: a ctlog section would require a transparency log entry", p, i)
					}
					atts := list(get(a, "attestations"))
					if len(atts) == 0 {
						t.Errorf("%s authorities[%d]: no attestations required", p, i)
					}
					for j, at := range atts {
						if got := str(get(at, "predicateType")); got != attest.PredicateTypeSPDX {
							t.Errorf("%s authorities[%d].attestations[%d].predicateType = %q; want %q", p, i, j, got, attest.PredicateTypeSPDX)
						}
						if got := cueWithoutComments(str(get(at, "policy.data"))); got != cueBody {
							t.Errorf("%s authorities[%d].attestations[%d]: inline CUE differs from policy/vouch-spdx.cue:\n%s\nvs\n%s", p, i, j, got, cueBody)
						}
					}
				}
			case "ClusterPolicy":
				rules := list(get(d, "spec.rules"))
				if len(rules) == 0 {
					t.Errorf("%s: no rules", p)
				}
				for i, r := range rules {
					vis := list(get(r, "verifyImages"))
					if len(vis) == 0 {
						t.Errorf("%s rules[%d]: no verifyImages", p, i)
					}
					for _, vi := range vis {
						atts := list(get(vi, "attestations"))
						if len(atts) == 0 {
							t.Errorf("%s rules[%d]: no attestations", p, i)
						}
						for _, at := range atts {
							if got := str(get(at, "type")); got != attest.PredicateTypeSPDX {
								t.Errorf("%s rules[%d] attestation type %q; want %q", p, i, got, attest.PredicateTypeSPDX)
							}
							for _, ar := range list(get(at, "attestors")) {
								for _, e := range list(get(ar, "entries")) {
									if got := strings.TrimSpace(str(get(e, "keys.publicKeys"))); got != wantKey {
										t.Errorf("%s rules[%d] publicKeys = %q; want the example key", p, i, got)
									}
									if get(e, "keys.rekor.ignoreTlog") != true {
										t.Errorf("%s rules[%d]: keys.rekor.ignoreTlog must be true", p, i)
									}
								}
							}
						}
					}
				}
			}
		}
	}
	for _, k := range []string{"ClusterImagePolicy", "ClusterPolicy", "Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "PersistentVolumeClaim"} {
		if kinds[k] == 0 {
			t.Errorf("no %s among the manifests", k)
		}
	}
}

func str(v any) string { s, _ := v.(string); return s }

func cueWithoutComments(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "//") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// decodeConfig decodes a vouchd configuration strictly: an unknown or
// misspelt field fails, as vouchd itself would refuse it.
func decodeConfig(t *testing.T, where, s string) *config.Config {
	t.Helper()
	var c config.Config
	dec := yaml.NewDecoder(strings.NewReader(s))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Errorf("%s: %v", where, err)
	}
	return &c
}

func TestKubernetesDeployments(t *testing.T) {
	docs := yamlDocs(t)
	tests := []struct {
		file         string
		replicas     int
		storePrefix  string
		wantPDB      bool
		wantProbes   []string
		wantPassword bool
	}{
		{file: "kubernetes/vouchd.yaml", replicas: 3, storePrefix: "postgres://", wantPDB: true, wantProbes: []string{"readinessProbe", "livenessProbe", "startupProbe"}, wantPassword: true},
		{file: "kubernetes/single-node/vouchd-sqlite.yaml", replicas: 1, storePrefix: "sqlite:///", wantProbes: []string{"readinessProbe", "livenessProbe"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ds := docs[tt.file]
			if len(ds) == 0 {
				t.Fatalf("%s missing", tt.file)
			}
			var sawDeploy, sawPDB, sawService bool
			for _, d := range ds {
				switch d["kind"] {
				case "Deployment":
					sawDeploy = true
					if got := get(d, "spec.replicas"); got != tt.replicas {
						t.Errorf("replicas = %v; want %d", got, tt.replicas)
					}
					c := get(d, "spec.template.spec.containers.0")
					for _, p := range tt.wantProbes {
						if get(c, p) == nil {
							t.Errorf("container has no %s", p)
						}
					}
					for _, r := range []string{"resources.requests.cpu", "resources.requests.memory", "resources.limits.memory"} {
						if get(c, r) == nil {
							t.Errorf("container has no %s", r)
						}
					}
					env := list(get(c, "env"))
					hasPW := false
					for _, e := range env {
						if get(e, "name") == "PGPASSWORD" && get(e, "valueFrom.secretKeyRef.name") != nil {
							hasPW = true
						}
					}
					if hasPW != tt.wantPassword {
						t.Errorf("PGPASSWORD from a Secret: %v; want %v", hasPW, tt.wantPassword)
					}
					// GOMEMLIMIT: set, and below the container's memory limit.
					var soft string
					for _, e := range env {
						if get(e, "name") == "GOMEMLIMIT" {
							soft = str(get(e, "value"))
						}
					}
					softB, okS := byteSize(soft, "MiB")
					hardB, okH := byteSize(str(get(c, "resources.limits.memory")), "Mi", "Gi")
					if !okS || !okH || softB >= hardB || softB < hardB/2 {
						t.Errorf("GOMEMLIMIT %q with limits.memory %v: want a soft limit between half the limit and the limit", soft, get(c, "resources.limits.memory"))
					}
				case "PodDisruptionBudget":
					sawPDB = true
				case "Service":
					sawService = true
				case "ConfigMap":
					if cfg, ok := get(d, "data.vouchd.yaml").(string); ok {
						c := decodeConfig(t, tt.file+" ConfigMap vouchd.yaml", cfg)
						if !strings.HasPrefix(c.Store, tt.storePrefix) {
							t.Errorf("store %q; want %s…", c.Store, tt.storePrefix)
						}
						if c.TLS == nil || c.Auth == nil {
							t.Errorf("a non-loopback vouchd needs tls and auth")
						}
					}
				}
			}
			if !sawDeploy || !sawService || sawPDB != tt.wantPDB {
				t.Errorf("Deployment %v, Service %v, PodDisruptionBudget %v; want true, true, %v", sawDeploy, sawService, sawPDB, tt.wantPDB)
			}
		})
	}
}

func TestExampleConfigs(t *testing.T) {
	files, err := filepath.Glob("examples/vouchd-*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("example configs: %v %v", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c := decodeConfig(t, f, string(b))
		if len(c.Repositories) == 0 || c.SigningKey == "" || c.Store == "" {
			t.Errorf("%s: needs store, signing_key and repositories", f)
		}
	}
}

// TestKubernetesFilesMounted: every file a manifest's vouchd.yaml names
// (repository keys, signing key, TLS, tokens) is provided by a volume the
// container mounts — a ConfigMap of the same file (by key, or by items
// path), a Secret, or a volume written at start — and every ConfigMap key is
// one Kubernetes accepts.
func TestKubernetesFilesMounted(t *testing.T) {
	validKey := func(k string) bool {
		for _, c := range k {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
				return false
			}
		}
		return k != "" && len(k) <= 253
	}
	for p, ds := range yamlDocs(t) {
		if !strings.HasPrefix(p, "kubernetes/") {
			continue
		}
		t.Run(p, func(t *testing.T) {
			configMaps := map[string]map[string]any{}
			var cfg *config.Config
			var deploy map[string]any
			for _, d := range ds {
				switch d["kind"] {
				case "ConfigMap":
					name := str(get(d, "metadata.name"))
					data, _ := get(d, "data").(map[string]any)
					configMaps[name] = data
					for k := range data {
						if !validKey(k) {
							t.Errorf("ConfigMap %s: key %q is not a valid ConfigMap key ([-._a-zA-Z0-9]+)", name, k)
						}
					}
					if s, ok := data["vouchd.yaml"].(string); ok {
						cfg = decodeConfig(t, p, s)
					}
				case "Deployment":
					deploy = d
				}
			}
			if cfg == nil || deploy == nil {
				t.Fatalf("want a Deployment and a vouchd.yaml ConfigMap")
			}
			volumes := map[string]any{}
			for _, v := range list(get(deploy, "spec.template.spec.volumes")) {
				volumes[str(get(v, "name"))] = v
			}
			// provides reports whether the container sees path, and how.
			provides := func(path string) (bool, string) {
				for _, m := range list(get(deploy, "spec.template.spec.containers.0.volumeMounts")) {
					mp := str(get(m, "mountPath"))
					rel, ok := strings.CutPrefix(path, mp+"/")
					if sub := str(get(m, "subPath")); sub != "" {
						rel, ok = sub, path == mp
					}
					if !ok {
						continue
					}
					v := volumes[str(get(m, "name"))]
					switch {
					case get(v, "configMap") != nil:
						cm := str(get(v, "configMap.name"))
						items := list(get(v, "configMap.items"))
						if len(items) == 0 {
							_, has := configMaps[cm][rel]
							return has, "ConfigMap " + cm + " key " + rel
						}
						for _, it := range items {
							if str(get(it, "path")) == rel {
								_, has := configMaps[cm][str(get(it, "key"))]
								return has, "ConfigMap " + cm + " item " + rel
							}
						}
						return false, "ConfigMap " + cm + " (no item for " + rel + ")"
					case get(v, "secret") != nil, get(v, "emptyDir") != nil, get(v, "persistentVolumeClaim") != nil:
						return true, "" // created outside this file, or written by the init container
					}
				}
				return false, "no volume mount"
			}
			paths := []string{cfg.SigningKey}
			for _, r := range cfg.Repositories {
				paths = append(paths, r.Keys...)
			}
			if cfg.TLS != nil {
				paths = append(paths, cfg.TLS.Cert, cfg.TLS.Key)
			}
			if cfg.Auth != nil && cfg.Auth.TokensFile != "" {
				paths = append(paths, cfg.Auth.TokensFile)
			}
			for _, path := range paths {
				if ok, how := provides(path); !ok {
					t.Errorf("%s is not provided to the container (%s)", path, how)
				}
			}
		})
	}
}

// byteSize parses "800MiB", "1Gi" and the like with one of the given units.
func byteSize(s string, units ...string) (int64, bool) {
	mult := map[string]int64{"Mi": 1 << 20, "MiB": 1 << 20, "Gi": 1 << 30, "GiB": 1 << 30}
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			return v * mult[u], err == nil && v > 0
		}
	}
	return 0, false
}
