package all_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/testcert"
	_ "github.com/sluice-dev/sluice/plugins/all"
	tlsterm "github.com/sluice-dev/sluice/plugins/tls"

	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/plugintest"
	"github.com/sluice-dev/sluice/pkg/registry"
)

// sections are the headings every plugin README has, in this order, so
// that a reader finds the same thing in the same place in each.
var sections = []string{"Name", "Description", "Options", "Example", "Metrics"}

var heading = regexp.MustCompile(`(?m)^## (.+)$`)

// TestPluginReadmes walks every plugins/*/README.md: its sections are the
// fixed ones in order, every ```yaml example loads through pkg/config with
// every bundled handler registered, and each example uses the plugin it
// documents. Every registered handler has such a README.
func TestPluginReadmes(t *testing.T) {
	readmes, err := filepath.Glob("../*/README.md")
	if err != nil {
		t.Fatal(err)
	}
	// The tls examples name certificate files where an operator keeps
	// them; they read one made here instead.
	defer tlsterm.UseFiles(exampleCertificates(t))()
	documented := map[string]bool{}
	for _, path := range readmes {
		name := filepath.Base(filepath.Dir(path))
		documented[name] = true
		t.Run(name, func(t *testing.T) {
			if _, ok := registry.Lookup(name); !ok {
				t.Fatalf("%s documents %q, which no plugin registers", path, name)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range heading.FindAllSubmatch(data, -1) {
				got = append(got, string(m[1]))
			}
			if !slices.Equal(got, sections) {
				t.Errorf("%s sections = %q, want %q", path, got, sections)
			}
			for i, cfg := range plugintest.CheckReadme(t, path) {
				if !uses(cfg, name) {
					t.Errorf("%s example %d does not use %s", path, i+1, name)
				}
			}
		})
	}
	for _, name := range registry.Names() {
		if !documented[name] {
			t.Errorf("handler %q has no plugins/%s/README.md", name, name)
		}
	}
}

// exampleCertificates serves a certificate for every .pem or .crt file
// under /etc/sluice/ and its key for every .key file there.
func exampleCertificates(t *testing.T) func(string) ([]byte, error) {
	leaf := testcert.NewCA(t, "example CA").Issue(t, testcert.Options{Names: []string{"example.com"}})
	return func(name string) ([]byte, error) {
		if strings.HasPrefix(name, "/etc/sluice/") {
			switch filepath.Ext(name) {
			case ".pem", ".crt":
				return leaf.CertPEM, nil
			case ".key":
				return leaf.KeyPEM, nil
			}
		}
		return os.ReadFile(name)
	}
}

func uses(cfg *config.Config, handler string) bool {
	for _, l := range cfg.Listeners {
		for _, h := range l.Chain {
			if h.Handler == handler {
				return true
			}
		}
	}
	return false
}
