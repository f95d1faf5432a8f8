package etcdsource

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/sluice-dev/sluice/internal/safefile"
	"github.com/sluice-dev/sluice/pkg/config"
)

// DefaultCacheName is the cache's file name in $STATE_DIRECTORY (which
// systemd sets from the unit's StateDirectory=sluice), else in
// DefaultCacheDir.
const (
	DefaultCacheName = "last-good.yaml"
	DefaultCacheDir  = "/var/lib/sluice"
)

// DefaultCachePath is where the cache goes without --cache.
func DefaultCachePath() string {
	dir := DefaultCacheDir
	if sd := os.Getenv("STATE_DIRECTORY"); sd != "" {
		// systemd lists one directory per StateDirectory= entry, ':'
		// between them; sluice's unit has one.
		dir, _, _ = strings.Cut(sd, ":")
	}
	return filepath.Join(dir, DefaultCacheName)
}

// Cache is the local copy of the last document applied: what sluice
// serves when it starts while etcd is unreachable. Its first line is a
// comment naming the URL and revision it came from.
type Cache struct{ path string }

// NewCache returns the cache at path.
func NewCache(path string) *Cache { return &Cache{path: path} }

// Path is the cache file.
func (c *Cache) Path() string { return c.path }

var header = regexp.MustCompile(`^# sluice: last good config from (\S+) at revision (\d+)`)

// Write replaces the cache with doc atomically: a temporary file in the
// same directory, synced, then renamed over the cache, and the directory
// synced, so that a crash leaves the old cache or the new one, never a
// torn one.
func (c *Cache) Write(url string, doc Document) error {
	dir := filepath.Dir(c.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(c.path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	var b bytes.Buffer
	fmt.Fprintf(&b, "# sluice: last good config from %s at revision %d; written by sluice, edits are overwritten\n", url, doc.Revision)
	b.Write(doc.Data)
	if _, err := tmp.Write(b.Bytes()); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), c.path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Load reads and validates the cached document, for url. A cache of
// another URL is refused: it is some other fleet's config.
func (c *Cache) Load(url string) (*config.Config, Document, error) {
	// The cache holds a config and its header line.
	data, err := safefile.ReadFile(c.path, config.MaxSize+4096)
	if err != nil {
		return nil, Document{}, err
	}
	doc := Document{Data: data}
	line, _, _ := bufio.NewReader(bytes.NewReader(data)).ReadLine()
	if m := header.FindSubmatch(line); m != nil {
		if string(m[1]) != url {
			return nil, Document{}, fmt.Errorf("%s holds the config of %s, not of %s", c.path, m[1], url)
		}
		doc.Revision, _ = strconv.ParseInt(string(m[2]), 10, 64)
		doc.Data = data[min(len(line)+1, len(data)):]
	}
	cfg, err := config.Parse(c.path, data)
	if err != nil {
		return nil, Document{}, err
	}
	return cfg, doc, nil
}
