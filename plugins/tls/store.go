package tlsterm

import (
	"bytes"
	"context"
	"crypto/tls"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/pkg/filewatch"
)

// retryAfter is how long a pair that failed to load is given before the
// failure is reported: a renewal that replaces the certificate and the
// key one after the other (certbot re-points two symlinks, an operator
// copies two files) is read between the two as a mismatch that heals by
// itself.
const retryAfter = 300 * time.Millisecond

// store holds the pairs a handler serves and reloads them when their
// files change. It is shared, through chain.Shared, by the tls handlers
// of every chain of its listener and scope that name the same files; the
// last one to let go stops its watch.
type store struct {
	files  []Certificate
	log    hclog.Logger
	expiry *prometheus.GaugeVec

	// cur is read by every handshake and replaced whole by reload.
	cur atomic.Pointer[[]*pair]

	cancel context.CancelFunc
	done   chan struct{} // closed when the watch's goroutine ended
}

// newStore starts serving pairs (loaded from files by Validate) and
// watching the files for changes.
func newStore(files []Certificate, pairs []*pair, log hclog.Logger, expiry *prometheus.GaugeVec) *store {
	s := &store{files: slices.Clone(files), log: log, expiry: expiry, done: make(chan struct{})}
	ps := slices.Clone(pairs)
	s.cur.Store(&ps)
	now := time.Now()
	var paths []string
	for i, p := range ps {
		s.setExpiry(nil, p)
		s.warnExpiring(files[i], p, now)
		paths = append(paths, files[i].Cert, files[i].Key)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	w, err := filewatch.New(paths, func() { s.reload(ctx) }, log)
	if err != nil {
		// Only a path that cannot be made absolute gets here; the
		// pairs loaded are served all the same.
		log.Error("cannot watch the certificate files; they will not reload themselves", "error", err)
		close(s.done)
		return s
	}
	go func() {
		defer close(s.done)
		w.Run(ctx)
	}()
	return s
}

// close stops the watch, waits for its goroutine to end, and lets go of
// the expiry series of what it served.
func (s *store) close() {
	s.cancel()
	<-s.done
	for _, p := range *s.cur.Load() {
		releaseSeries(s.expiry, namesLabel(p))
	}
}

// getCertificate is the tls.Config's: the pair for the client's SNI.
func (s *store) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return pick(*s.cur.Load(), hello.ServerName).cert, nil
}

// reload loads every pair again after its files changed, and serves the
// ones that changed from the next handshake. A pair that does not load
// is logged once and the last good one stays.
func (s *store) reload(ctx context.Context) {
	old := *s.cur.Load()
	next := slices.Clone(old)
	changed := false
	for i, f := range s.files {
		p, err := loadPair(f.Cert, f.Key, time.Now())
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(retryAfter):
			}
			p, err = loadPair(f.Cert, f.Key, time.Now())
		}
		if err != nil {
			s.log.Error("certificate reload failed; serving the last good one",
				"cert", f.Cert, "key", f.Key, "error", err)
			continue
		}
		if sameChain(p.cert, old[i].cert) {
			continue // another file of the directory changed
		}
		next[i] = p
		changed = true
		s.setExpiry(old[i], p)
		s.log.Info("certificate reloaded", "cert", f.Cert, "names", p.names, "not_after", p.notAfter)
		s.warnExpiring(f, p, p.loadedAt)
	}
	if changed {
		s.cur.Store(&next)
	}
}

func (s *store) warnExpiring(f Certificate, p *pair, now time.Time) {
	if p.expiring(now) {
		s.log.Warn("certificate expires soon", "cert", f.Cert, "names", p.names, "not_after", p.notAfter)
	}
}

// setExpiry sets p's series of the expiry gauge in place of old's.
func (s *store) setExpiry(old, p *pair) {
	holdSeries(s.expiry, namesLabel(p), float64(p.notAfter.Unix()))
	if old != nil {
		releaseSeries(s.expiry, namesLabel(old))
	}
}

func namesLabel(p *pair) string { return strings.Join(p.names, ",") }

func sameChain(a, b *tls.Certificate) bool {
	return slices.EqualFunc(a.Certificate, b.Certificate, bytes.Equal)
}
