package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

// HealthCheck is the health_check option: active checks of every upstream.
type HealthCheck struct {
	Interval time.Duration `mapstructure:"interval"`
	Timeout  time.Duration `mapstructure:"timeout"`
	Rise     int           `mapstructure:"rise"`
	Fall     int           `mapstructure:"fall"`
	Send     string        `mapstructure:"send"`
	Expect   string        `mapstructure:"expect"`
}

// Health check defaults, as documented in the README.
const (
	DefaultCheckInterval = 2 * time.Second
	DefaultCheckTimeout  = time.Second
	DefaultRise          = 2
	DefaultFall          = 3

	// MinCheckInterval is the shortest interval accepted: checks are
	// connects, and an upstream checked more often than ten times a
	// second is a load on it and on sluice, not a faster verdict.
	MinCheckInterval = 100 * time.Millisecond
	// MaxCheckBytes bounds send and expect: a probe holds a buffer of
	// expect's size, and a banner or a health request is a few dozen
	// bytes.
	MaxCheckBytes = 4096
)

// withDefaults fills in what was omitted. HealthCheck is comparable, so
// the result is part of the key a checker is shared under.
func (hc HealthCheck) withDefaults() HealthCheck {
	if hc.Interval == 0 {
		hc.Interval = DefaultCheckInterval
	}
	if hc.Timeout == 0 {
		hc.Timeout = DefaultCheckTimeout
	}
	if hc.Rise == 0 {
		hc.Rise = DefaultRise
	}
	if hc.Fall == 0 {
		hc.Fall = DefaultFall
	}
	return hc
}

// Upstream states, as /status shows them.
const (
	StateUnchecked = "unchecked"
	StateUp        = "up"
	StateDown      = "down"
)

// checkerKey identifies a checker in the supervisor's chain.Shared: a
// reload that keeps a listener's upstream and its check keeps its state.
type checkerKey struct {
	listener string
	url      string
	check    HealthCheck
	// tls is the fingerprint of the upstream's TLS settings and files
	// ("" without tls): other certificates are another check.
	tls string
}

// checker checks one upstream every interval, from its own goroutine,
// and keeps its state. It is shared by the handlers of every chain of its
// listener that check the same upstream the same way; the handler whose
// Close lets go of it last stops it.
type checker struct {
	target target
	tls    *tls.Config // nil: a plain connect
	opts   HealthCheck
	log    hclog.Logger
	gauge  prometheus.Gauge // sluice_upstream_up for this upstream

	down atomic.Bool // read per connection by pool.order

	mu        sync.Mutex
	state     string
	okRun     int
	failRun   int
	lastCheck time.Time
	lastError string // "" after a success

	// ctx ends when close begins: a probe in progress ends with it
	// rather than after up to health_check.timeout (at most a year),
	// which held the reload that removed the upstream, every reload
	// after it, and the drain at SIGTERM.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func newChecker(t target, tlsCfg *tls.Config, opts HealthCheck, log hclog.Logger, gauge prometheus.Gauge) *checker {
	c := &checker{target: t, tls: tlsCfg, opts: opts, log: log, gauge: gauge, state: StateUnchecked,
		done: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	gauge.Set(1) // unchecked upstreams take connections
	go c.run()
	return c
}

// close stops the checks, a probe in progress included, and waits for
// the goroutine to end.
func (c *checker) close() {
	c.cancel()
	<-c.done
}

// run checks until close. The first check comes after a random part of
// the interval and each later one after the interval ±10%, so that the
// checks of many upstreams (and of many sluices) do not fall in step.
func (c *checker) run() {
	defer close(c.done)
	t := time.NewTimer(time.Duration(rand.Int64N(int64(c.opts.Interval))))
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.opts.Timeout)
		err := c.probe(ctx)
		cancel()
		if c.ctx.Err() != nil {
			return // closed mid-probe: its failure says nothing of the upstream
		}
		c.record(err, time.Now())
		jitter := time.Duration(rand.Int64N(int64(c.opts.Interval)/5+1)) - c.opts.Interval/10
		t.Reset(c.opts.Interval + jitter)
	}
}

// maxCheckReply is how much of a reply a check reads for expect, as
// HAProxy's tcp-check reads one buffer.
const maxCheckReply = 64 << 10

// errExpect is a check whose reply did not contain expect in time, or
// in its first maxCheckReply bytes.
var errExpect = errors.New("reply does not contain the expected bytes")

// checkTLS is the config health checks use for an upstream: the
// clients' one without its session cache, so that every check verifies
// the certificate the upstream serves now (one that expired or was
// replaced by a bad one takes the upstream down).
func checkTLS(cfg *tls.Config) *tls.Config {
	if cfg == nil {
		return nil
	}
	cfg = cfg.Clone()
	cfg.ClientSessionCache = nil
	return cfg
}

// probe connects (with tls, connects and completes a verified
// handshake), sends send and waits for expect, all within timeout. It
// never writes a PROXY header: a check is sluice's own connection.
func (c *checker) probe(ctx context.Context) error {
	// No keepalive: a check's connection lives for one probe.
	d := net.Dialer{KeepAlive: -1}
	conn, err := d.DialContext(ctx, c.target.network, c.target.address)
	if err != nil {
		return err
	}
	if c.tls != nil {
		if conn, err = handshake(ctx, conn, c.tls); err != nil {
			return err
		}
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	// The deadline bounds the probe; close ends it sooner.
	defer context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })()
	if c.opts.Send != "" {
		if _, err := io.WriteString(conn, c.opts.Send); err != nil {
			return fmt.Errorf("sending: %w", err)
		}
	}
	if c.opts.Expect == "" {
		return nil
	}
	want := []byte(c.opts.Expect)
	buf := make([]byte, 0, 4096+len(want))
	read := 0
	for {
		if bytes.Contains(buf, want) {
			return nil
		}
		if read >= maxCheckReply {
			// An upstream that streams without end would otherwise be
			// read at full speed until timeout, every interval.
			return fmt.Errorf("%w in the first %d bytes of the reply", errExpect, read)
		}
		if len(buf) == cap(buf) {
			// Keep the tail that may hold the start of expect.
			buf = append(buf[:0], buf[len(buf)-len(want)+1:]...)
		}
		n, err := conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		read += n
		if err != nil && !bytes.Contains(buf, want) {
			return fmt.Errorf("%w: %w", errExpect, err)
		}
	}
}

// record applies one check's result: rise successes in a row bring a
// down upstream up (the first one an unchecked upstream), fall failures
// in a row take it down. Each change is one log line.
func (c *checker) record(err error, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastCheck = now
	from := c.state
	if err == nil {
		c.lastError = ""
		c.okRun++
		c.failRun = 0
		if c.state == StateUnchecked || (c.state == StateDown && c.okRun >= c.opts.Rise) {
			c.state = StateUp
		}
	} else {
		c.lastError = err.Error()
		c.failRun++
		c.okRun = 0
		if c.state != StateDown && c.failRun >= c.opts.Fall {
			c.state = StateDown
		}
	}
	if c.state == from {
		return
	}
	c.down.Store(c.state == StateDown)
	if c.state == StateDown {
		c.gauge.Set(0)
		c.log.Warn("upstream down", "upstream", c.target.url, "error", err, "fall", c.opts.Fall)
	} else {
		c.gauge.Set(1)
		c.log.Info("upstream up", "upstream", c.target.url, "rise", c.opts.Rise)
	}
}

// CheckStatus is one upstream's health as /status shows it.
type CheckStatus struct {
	State     string    `json:"state"`
	LastCheck time.Time `json:"last_check,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

func (c *checker) status() CheckStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CheckStatus{State: c.state, LastCheck: c.lastCheck, LastError: c.lastError}
}
