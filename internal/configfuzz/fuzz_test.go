// Package configfuzz fuzzes config loading and validation with every
// handler registered, as in the binary: whatever bytes the file holds,
// Parse returns a config or errors, never panics, and never takes long.
// `make fuzz` runs it for a bounded time; a plain `go test` runs the
// seeds.
package configfuzz

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/decode"
	"github.com/sluice-dev/sluice/pkg/plugintest"
	_ "github.com/sluice-dev/sluice/plugins/all"
)

// slow is how long one input may take to parse and validate. Real
// configs take milliseconds; the bound is loose for a loaded CI machine
// and still far below the seconds to minutes the pathological inputs
// used to take.
const slow = 5 * time.Second

// seeds are every example config of the repository: the example and
// packaged configs, and each YAML block of the READMEs and docs.
func seeds(f *testing.F) [][]byte {
	f.Helper()
	root := filepath.Join("..", "..")
	var out [][]byte
	for _, p := range []string{"config.example.yaml", "packaging/config.yaml"} {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	var docs []string
	for _, pattern := range []string{"README.md", "docs/*.md", "plugins/*/README.md", "packaging/*.md"} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			f.Fatal(err)
		}
		docs = append(docs, m...)
	}
	for _, d := range docs {
		for _, ex := range plugintest.ReadmeExamples(f, d) {
			out = append(out, []byte(ex))
		}
	}
	if len(out) < 5 {
		f.Fatalf("only %d seeds found", len(out))
	}
	return out
}

func FuzzParse(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	// Shapes that once cost seconds or gigabytes.
	f.Add([]byte("a:\n  b:\n    c:\n      d:\n        e: 1\n"))
	f.Add([]byte("a: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n"))
	f.Add([]byte("x: &a [1, 1, 1, 1]\ny: &b [*a, *a, *a, *a]\nz: [*b, *b, *b, *b]\nlisteners: []\n"))
	f.Add([]byte("admin:\n  adress:\nlisteners: []\n"))
	f.Add([]byte("listeners:\n  - {name: a, network: tcp, address: '127.0.0.1:0', idle_timeout: 2100000h, chain: [{handler: ratelimit, max_connections: 1e20, burst: 1.5}, {handler: echo}]}\n"))
	f.Add([]byte("# only a comment\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range []string{"fuzz.yaml", "fuzz.json", "fuzz.toml"} {
			start := time.Now()
			cfg, err := config.Parse(name, data)
			if d := time.Since(start); d > slow {
				t.Errorf("%s: took %v", name, d)
			}
			if err == nil && (cfg == nil || cfg.Hash == "") {
				t.Errorf("%s: no error and no config", name)
			}
			if err != nil && len(decode.Split(err)) == 0 {
				t.Errorf("%s: an error with no problem listed", name)
			}
		}
	})
}
