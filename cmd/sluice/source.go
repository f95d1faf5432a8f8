package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/pkg/admin"
	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/etcdsource"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/reload"
)

// configSource is where run reads its config: the file, or an etcd key
// (etcd is nil for a file).
type configSource struct {
	path string
	etcd *etcdsource.Source
	// first is the document of the first config; cached says why it came
	// from the cache rather than etcd (nil: it came from etcd).
	first  etcdsource.Document
	cached error
}

// openEtcd connects to the etcd key path names (an etcd:// URL); cache
// may be nil.
func openEtcd(cmd *cobra.Command, path string, cache *etcdsource.Cache) (*etcdsource.Source, error) {
	t, err := etcdsource.ParseURL(path)
	if err != nil {
		return nil, config.Errors{{File: path, Msg: err.Error(), Err: err}}
	}
	access, err := etcdAccess(cmd)
	if err != nil {
		return nil, config.Errors{{File: path, Msg: err.Error(), Err: err}}
	}
	cli, err := etcdsource.NewClient(t, access)
	if err != nil {
		return nil, config.Errors{{File: path, Msg: err.Error(), Err: err}}
	}
	return etcdsource.New(t, cli, cache, hclog.NewNullLogger()), nil
}

// loadConfig reads the first config for validate (cache nil) or run.
// From etcd, a run whose etcd does not answer starts from the cache of
// the last document it applied.
func loadConfig(ctx context.Context, cmd *cobra.Command, path string, cache *etcdsource.Cache) (*configSource, *config.Config, error) {
	if !etcdsource.IsURL(path) {
		cfg, err := config.Load(path)
		return &configSource{path: path}, cfg, err
	}
	src, err := openEtcd(cmd, path, cache)
	if err != nil {
		return nil, nil, err
	}
	s := &configSource{path: path, etcd: src}
	doc, _, err := src.Get(ctx)
	if err == nil {
		cfg, perr := src.Parse(doc.Data)
		if perr != nil {
			s.close()
			return nil, nil, perr
		}
		s.first = doc
		return s, cfg, nil
	}
	if !errors.Is(err, etcdsource.ErrUnreachable) || cache == nil {
		s.close()
		msg := "cannot read config: " + err.Error()
		if errors.Is(err, etcdsource.ErrNoKey) {
			msg = fmt.Sprintf("cannot read config: etcd key %s does not exist", src.Target().Key)
		}
		return nil, nil, config.Errors{{File: path, Msg: msg, Err: err}}
	}
	cfg, doc, cerr := cache.Load(path)
	if cerr != nil {
		s.close()
		why := cerr.Error()
		if errors.Is(cerr, fs.ErrNotExist) {
			why = "no cache at " + cache.Path() + " (it is written after the first config from etcd is applied)"
		}
		return nil, nil, config.Errors{{File: path, Msg: fmt.Sprintf("cannot read config: %v; and cannot start from the cache: %s", err, why), Err: err}}
	}
	s.first, s.cached = doc, err
	return s, cfg, nil
}

// attach makes rl read through the source and reports where the first
// config came from.
func (s *configSource) attach(rl *reload.Reloader, m *metrics.Metrics, log hclog.Logger) {
	if s.etcd == nil {
		return
	}
	s.etcd.SetLogger(log.Named("etcd"))
	rl.SetLoader(s.etcd.Load)
	rl.AddHook(s.etcd)
	if err := s.etcd.Register(m.Registry); err != nil {
		log.Warn("cannot register the config source metric", "error", err)
	}
	t := s.etcd.Target()
	if s.cached != nil {
		log.Warn("etcd unreachable; serving the cached config until it is back", "url", t.URL,
			"cache", cacheName(s.etcd), "revision", s.first.Revision, "error", s.cached)
		return
	}
	log.Info("config read from etcd", "url", t.URL, "key", t.Key, "revision", s.first.Revision)
}

// started records the first config as running (and caches it).
func (s *configSource) started() {
	if s.etcd != nil {
		s.etcd.Started(s.first)
	}
}

// adminStatus is /status's source; nil for a file, which admin reports
// itself.
func (s *configSource) adminStatus() func() admin.SourceStatus {
	if s.etcd == nil {
		return nil
	}
	return func() admin.SourceStatus {
		st := s.etcd.Status()
		return admin.SourceStatus{Kind: st.Kind, URL: st.URL, Key: st.Key, Revision: st.Revision, Connected: st.Connected}
	}
}

// watch starts the watcher of the file or of the etcd key, in a
// goroutine owned by run; nil when the watch is off.
func (s *configSource) watch(ctx context.Context, rl *reload.Reloader, log hclog.Logger, enabled bool) *background {
	if s.etcd == nil {
		return startWatch(ctx, rl, log, enabled)
	}
	if !enabled {
		log.Info("etcd watch disabled; reload with SIGHUP")
		return nil
	}
	w := etcdsource.NewWatcher(s.etcd, func(ctx context.Context) error {
		_, err := rl.Reload(ctx, etcdsource.TriggerEtcd)
		return err
	}, log.Named("etcd"))
	return goBackground(ctx, w.Run)
}

func (s *configSource) close() {
	if s != nil && s.etcd != nil {
		_ = s.etcd.Client().Close()
	}
}

func cacheName(s *etcdsource.Source) string {
	if st := s.Status(); st.Cache != "" {
		return st.Cache
	}
	return "-"
}

// runCache is the cache run keeps of an etcd source's document.
func runCache(cmd *cobra.Command) *etcdsource.Cache {
	if p, _ := cmd.Flags().GetString("cache"); p != "" {
		return etcdsource.NewCache(p)
	}
	return etcdsource.NewCache(etcdsource.DefaultCachePath())
}
