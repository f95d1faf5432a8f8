package etcdsource

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/config"
)

const doc1 = `listeners:
  - name: echo
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: echo
`

func TestCacheRoundTrip(t *testing.T) {
	dir := t.TempDir()
	c := NewCache(filepath.Join(dir, "last-good.yaml"))
	const url = "etcd://127.0.0.1:2379/sluice/config.yaml"
	if _, _, err := c.Load(url); !os.IsNotExist(err) {
		t.Fatalf("load of a missing cache: %v, want not exist", err)
	}
	for rev := int64(7); rev <= 8; rev++ { // the second write replaces the first
		if err := c.Write(url, Document{Data: []byte(doc1), Revision: rev}); err != nil {
			t.Fatal(err)
		}
	}
	cfg, doc, err := c.Load(url)
	if err != nil {
		t.Fatal(err)
	}
	if doc.Revision != 8 || string(doc.Data) != doc1 || len(cfg.Listeners) != 1 {
		t.Errorf("cache load: revision %d, data %q, %d listeners; want 8, the document, 1", doc.Revision, doc.Data, len(cfg.Listeners))
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("cache directory holds %d files, want 1 (no temporary file left)", len(entries))
	}
	if fi, _ := os.Stat(c.Path()); fi.Mode().Perm() != 0o600 {
		t.Errorf("cache mode %v, want 0600", fi.Mode().Perm())
	}
	// Another fleet's cache is not served.
	if _, _, err := c.Load("etcd://127.0.0.1:2379/other.yaml"); err == nil || !strings.Contains(err.Error(), "not of etcd://127.0.0.1:2379/other.yaml") {
		t.Errorf("load for another URL: %v, want a refusal", err)
	}
	// An invalid cache is an error naming the file.
	if err := os.WriteFile(c.Path(), []byte("listeners: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Load(url); err == nil || !strings.Contains(err.Error(), c.Path()+": listeners") {
		t.Errorf("load of an invalid cache: %v", err)
	}
}

func TestCacheWriteFailsInMissingDir(t *testing.T) {
	c := NewCache(filepath.Join(t.TempDir(), "nope", "last-good.yaml"))
	if err := c.Write("etcd://h:1/k", Document{Data: []byte(doc1)}); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

func TestDefaultCachePath(t *testing.T) {
	t.Setenv("STATE_DIRECTORY", "/var/lib/sluice-a:/var/lib/other")
	if got := DefaultCachePath(); got != "/var/lib/sluice-a/last-good.yaml" {
		t.Errorf("with STATE_DIRECTORY: %s", got)
	}
	t.Setenv("STATE_DIRECTORY", "")
	if got := DefaultCachePath(); got != "/var/lib/sluice/last-good.yaml" {
		t.Errorf("without STATE_DIRECTORY: %s", got)
	}
}

// TestDocumentSizeBound: a document over config.MaxSize is refused as a
// file that size is, and one at the limit round-trips through the cache.
// Before, a 5 MB document from etcd was applied and cached, and the next
// start with etcd down refused the cache as too large.
func TestDocumentSizeBound(t *testing.T) {
	const url = "etcd://127.0.0.1:2379/sluice/config.yaml"
	src := New(Target{URL: url, Key: "/sluice/config.yaml"}, nil, nil, hclog.NewNullLogger())
	pad := func(n int) []byte {
		b := []byte(doc1)
		for len(b) < n-6 {
			b = append(b, "# pad\n"...)
		}
		return append(b, strings.Repeat("#", n-len(b)-1)+"\n"...)
	}
	_, err := src.Parse(pad(config.MaxSize + 1))
	if want := url + ": cannot read config: config document too large: 4194305 bytes; the limit is 4 MiB"; err == nil || err.Error() != want {
		t.Errorf("document of MaxSize+1 bytes: %v, want %q", err, want)
	}
	at := pad(config.MaxSize)
	if len(at) != config.MaxSize {
		t.Fatalf("padded to %d bytes", len(at))
	}
	if _, err := src.Parse(at); err != nil {
		t.Fatalf("document of MaxSize bytes: %v", err)
	}
	c := NewCache(filepath.Join(t.TempDir(), "last-good.yaml"))
	if err := c.Write(url, Document{Data: at, Revision: 3}); err != nil {
		t.Fatal(err)
	}
	if _, doc, err := c.Load(url); err != nil || doc.Revision != 3 {
		t.Errorf("cache of a document at the limit: revision %d, %v", doc.Revision, err)
	}
}
