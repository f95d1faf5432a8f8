package proxy

import (
	"cmp"
	"crypto/tls"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

// counter is the one method of a Prometheus counter the pool uses.
type counter interface{ Inc() }

// upstream is one target with its live state.
type upstream struct {
	target
	// active counts open connections (UDP: flows) to it, for least_conn.
	active atomic.Int64
	// downUntil is when a failed upstream may be tried again, in unix
	// nanoseconds; 0 while it is up.
	downUntil atomic.Int64
	errors    counter
	// tls is the client config when the proxy speaks TLS to it; nil
	// for plain connections.
	tls *tls.Config
	// check is the upstream's health checker; nil without health_check.
	check *checker
	// gauge is sluice_upstream_connections_active for it: shared by the
	// chains of a reload, unlike active.
	gauge prometheus.Gauge
}

// opened and closed count a connection (UDP: a flow) to u.
func (u *upstream) opened() {
	u.active.Add(1)
	u.gauge.Inc()
}

func (u *upstream) closed() {
	u.active.Add(-1)
	u.gauge.Dec()
}

// checkedDown reports whether u's health checks have taken it down.
func (u *upstream) checkedDown() bool { return u.check != nil && u.check.down.Load() }

// pool balances over the upstreams and remembers which ones failed.
type pool struct {
	ups         []*upstream
	balance     string
	failTimeout time.Duration
	log         hclog.Logger
	next        atomic.Uint64
}

func newPool(ts []target, balance string, failTimeout time.Duration, log hclog.Logger, errs func(string) counter) *pool {
	p := &pool{balance: balance, failTimeout: failTimeout, log: log}
	for _, t := range ts {
		p.ups = append(p.ups, &upstream{target: t, errors: errs(t.url), gauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "unregistered"})})
	}
	return p
}

// order returns the upstreams to try for one client, in order: those not
// marked down, arranged by the balance. An upstream its health checks
// took down is never tried; when every upstream is, order is empty and
// the client fails at once. When every upstream left is marked down by a
// failed connect, all of those are tried all the same: refusing a client
// on the strength of failures that may be seconds old would turn a brief
// outage of the whole pool into one of fail_timeout.
func (p *pool) order(buf []*upstream) []*upstream {
	now := time.Now().UnixNano()
	checked := 0
	for _, u := range p.ups {
		if u.checkedDown() {
			continue
		}
		checked++
		if d := u.downUntil.Load(); d == 0 || d <= now {
			buf = append(buf, u)
		}
	}
	if len(buf) == 0 && checked > 0 {
		for _, u := range p.ups {
			if !u.checkedDown() {
				buf = append(buf, u)
			}
		}
	}
	n := len(buf)
	if n <= 1 {
		return buf
	}
	var start int
	switch p.balance {
	case Random:
		start = rand.IntN(n)
	default:
		start = int((p.next.Add(1) - 1) % uint64(n))
	}
	rotate(buf, start)
	if p.balance == LeastConn {
		// Stable, so that among equally loaded upstreams the rotation
		// above still takes turns.
		slices.SortStableFunc(buf, func(a, b *upstream) int { return cmp.Compare(a.active.Load(), b.active.Load()) })
	}
	return buf
}

// rotate moves buf[start] to the front, keeping the cyclic order.
func rotate(buf []*upstream, start int) {
	if start == 0 {
		return
	}
	reverse(buf[:start])
	reverse(buf[start:])
	reverse(buf)
}

func reverse(s []*upstream) {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
}

// failed counts an error of u and skips it for fail_timeout. The first
// failure of an upstream that was up is logged: an operator wants to know
// a backend went away, once, not once per client.
func (p *pool) failed(u *upstream, err error) {
	u.errors.Inc()
	until := time.Now().Add(p.failTimeout).UnixNano()
	if prev := u.downUntil.Swap(until); prev == 0 {
		p.log.Warn("upstream failed; skipping it", "upstream", u.url, "error", err, "fail_timeout", p.failTimeout)
	}
}

// succeeded marks u up again.
func (p *pool) succeeded(u *upstream) {
	if u.downUntil.Load() != 0 && u.downUntil.Swap(0) != 0 {
		p.log.Info("upstream reachable again", "upstream", u.url)
	}
}
