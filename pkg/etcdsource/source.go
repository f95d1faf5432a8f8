package etcdsource

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sluice-dev/sluice/pkg/config"
)

// ErrNoKey is a key that does not exist in etcd: like a config file that
// does not exist.
var ErrNoKey = errors.New("key does not exist")

// ErrUnreachable wraps a request etcd did not answer within Timeout.
var ErrUnreachable = errors.New("etcd unreachable")

// Document is one version of the config document.
type Document struct {
	Data []byte
	// Revision is the key's ModRevision: the etcd revision that wrote
	// this version. 0 when unknown (a cache written without one).
	Revision int64
}

// Source is the config as one etcd key: the reloader's loader, a reload
// hook that records what runs and caches it, and the state /status and
// /metrics report.
type Source struct {
	target Target
	cli    *clientv3.Client
	cache  *Cache // nil: no cache
	log    hclog.Logger

	// mu guards offered, loaded and running.
	mu sync.Mutex
	// offered is a document the watcher has just received; the next load
	// takes it rather than asking etcd again.
	offered *Document
	// loaded is the document of the load in progress, running the one
	// applied last.
	loaded  *Document
	running Document

	connected atomic.Bool
}

// New returns the source of t's key read through cli; cache may be nil.
func New(t Target, cli *clientv3.Client, cache *Cache, log hclog.Logger) *Source {
	return &Source{target: t, cli: cli, cache: cache, log: log}
}

// SetLogger sets where the source logs (a cache it cannot write); call
// it before the source is in use.
func (s *Source) SetLogger(log hclog.Logger) { s.log = log }

// Target is the key this source reads.
func (s *Source) Target() Target { return s.target }

// Client is the etcd client the source reads through.
func (s *Source) Client() *clientv3.Client { return s.cli }

// Get reads the document from etcd within Timeout. The returned header
// revision is the store's revision at the read: a watch from the next
// one misses nothing.
func (s *Source) Get(ctx context.Context) (doc Document, header int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.target.Key)
	if err != nil {
		s.connected.Store(false)
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			return Document{}, 0, fmt.Errorf("%w within %v (members %v): %w", ErrUnreachable, Timeout, s.target.Endpoints, err)
		}
		return Document{}, 0, fmt.Errorf("etcd get %s: %w", s.target.Key, err)
	}
	s.connected.Store(true)
	if len(resp.Kvs) == 0 {
		return Document{}, resp.Header.Revision, ErrNoKey
	}
	kv := resp.Kvs[0]
	return Document{Data: kv.Value, Revision: kv.ModRevision}, resp.Header.Revision, nil
}

// Parse reads data as the config document, through the same parser and
// validator as a file's, errors naming the URL where a file's would name
// the file. A document over config.MaxSize is refused as a file that size
// is: etcd takes values as large as its --max-request-bytes, and one that
// sluice applied was written to the cache, which the next start, with
// etcd down, then refused to read.
func (s *Source) Parse(data []byte) (*config.Config, error) {
	if err := config.CheckSize(s.target.URL, "config document", len(data)); err != nil {
		return nil, err
	}
	return config.Parse(s.target.URL, data)
}

// Load is the reloader's loader: the document the watcher offered, else
// the key as etcd has it now. Problems come back as config.Errors naming
// the URL, as a file's do.
func (s *Source) Load(ctx context.Context) (*config.Config, error) {
	s.mu.Lock()
	doc := s.offered
	s.offered = nil
	s.mu.Unlock()
	if doc == nil {
		d, _, err := s.Get(ctx)
		if err != nil {
			return nil, s.readError(err)
		}
		doc = &d
	}
	cfg, err := s.Parse(doc.Data)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.loaded = doc
	s.mu.Unlock()
	return cfg, nil
}

func (s *Source) readError(err error) error {
	msg := "cannot read config: " + err.Error()
	if errors.Is(err, ErrNoKey) {
		msg = fmt.Sprintf("cannot read config: etcd key %s does not exist", s.target.Key)
	}
	return config.Errors{{File: s.target.URL, Msg: msg, Err: err}}
}

// offer hands the next load a document the watcher received.
func (s *Source) offer(d Document) {
	s.mu.Lock()
	s.offered = &d
	s.mu.Unlock()
}

// Running is the document applied last.
func (s *Source) Running() Document {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

// Started records doc as running: the first config, applied by
// Reloader.Start, which tells no hook.
func (s *Source) Started(doc Document) {
	s.mu.Lock()
	s.running = doc
	s.mu.Unlock()
	s.save(doc)
}

// ReloadBegin is part of reload.Hook.
func (s *Source) ReloadBegin(string) {
	s.mu.Lock()
	s.loaded = nil
	s.mu.Unlock()
}

// ReloadEnd is part of reload.Hook: a reload that succeeded with a
// document of this source (not one that failed, nor one refused at
// shutdown) makes it the running one, and the cache's.
func (s *Source) ReloadEnd(_ string, err error) {
	s.mu.Lock()
	doc := s.loaded
	s.loaded = nil
	ok := err == nil && doc != nil
	if ok {
		s.running = *doc
	}
	s.mu.Unlock()
	if ok {
		s.save(*doc)
	}
}

func (s *Source) save(doc Document) {
	if s.cache == nil {
		return
	}
	if err := s.cache.Write(s.target.URL, doc); err != nil {
		s.log.Warn("cannot write the config cache; a start while etcd is down would fail", "cache", s.cache.Path(), "error", err)
	}
}

// Connected reports whether sluice is in touch with etcd now.
func (s *Source) Connected() bool { return s.connected.Load() }

// Status is what /status shows of the source.
type Status struct {
	Kind      string `json:"kind"` // etcd
	URL       string `json:"url"`
	Key       string `json:"key"`
	Revision  int64  `json:"revision"` // of the running config; 0 unknown
	Connected bool   `json:"connected"`
	Cache     string `json:"cache,omitempty"`
}

// Status reports the source's state now.
func (s *Source) Status() Status {
	st := Status{Kind: "etcd", URL: s.target.URL, Key: s.target.Key, Revision: s.Running().Revision, Connected: s.Connected()}
	if s.cache != nil {
		st.Cache = s.cache.Path()
	}
	return st
}
