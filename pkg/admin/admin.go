// Package admin is sluice's admin HTTP endpoint: /healthz, /status,
// /metrics, POST /reload and POST /upgrade. It is a reload.Stage, so that admin.address
// follows the config like everything else: the endpoint starts with the
// first config, moves when the address changes, stops when it is emptied,
// and an address that cannot be bound fails the reload as a whole.
package admin

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/reload"
	"github.com/sluice-dev/sluice/pkg/supervisor"
)

// Server limits. The endpoint is for operators and scrapers, so requests
// are small and quick; the bounds keep a stuck or hostile client from
// holding sockets or memory.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	// writeTimeout covers a POST /reload, which binds sockets but never
	// waits for a drain.
	writeTimeout = 30 * time.Second
	// idleTimeout is short: a kept-alive connection holds one of the
	// maxConns slots (and a descriptor) while it idles.
	idleTimeout = 15 * time.Second
	// HeaderLimit is the most a request line and its headers may take;
	// past it the endpoint answers 431. net/http reads up to 4096 bytes
	// beyond MaxHeaderBytes before refusing, so MaxHeaderBytes is set that
	// much lower.
	HeaderLimit    = 16 << 10
	maxHeaderBytes = HeaderLimit - 4096
	// MaxConns caps the endpoint's open connections. Past it, new ones
	// wait in the kernel's accept queue, costing sluice no descriptor, so
	// that a flood of the admin port cannot take the descriptors the
	// data listeners need (see pkg/fdbudget for the other direction).
	MaxConns = 64
	// shutdownTimeout bounds a graceful stop of a moved or closed
	// endpoint; requests still running after it are cut.
	shutdownTimeout = 5 * time.Second
)

// Supervisor is what the endpoint reports on: *supervisor.Supervisor.
type Supervisor interface {
	Config() *config.Config
	Status() []supervisor.ListenerStatus
	// FlushBytes brings sluice_bytes_total up to date with the bytes of
	// connections still open; /metrics calls it before each scrape.
	FlushBytes()
}

// Reloader runs reloads for POST /reload and tells /status about the
// latest one: *reload.Reloader.
type Reloader interface {
	Reload(ctx context.Context, trigger string) (supervisor.Summary, error)
	Last() (reload.Result, bool)
}

// Upgrader runs binary upgrades for POST /upgrade: *upgrade.Upgrader.
type Upgrader interface {
	Upgrade(trigger string) (pid int, err error)
}

// Options are what New needs; all are required but Upgrader (without it,
// POST /upgrade answers 501).
type Options struct {
	Log        hclog.Logger
	Metrics    *metrics.Metrics
	Supervisor Supervisor
	Reloader   Reloader
	Upgrader   Upgrader
	// Source reports where the config comes from; nil: the config file.
	Source func() SourceStatus
}

// Admin is the admin endpoint. It binds nothing until its first Prepare;
// Close stops it and waits for every goroutine it started.
type Admin struct {
	log      hclog.Logger
	errLog   *log.Logger
	sup      Supervisor
	reloader Reloader
	upgrader Upgrader
	source   func() SourceStatus
	handler  http.Handler
	started  time.Time
	draining atomic.Bool

	// mu guards cur and closed. Prepare and Commit are serialized by the
	// reloader, but Close and Addr are not.
	mu     sync.Mutex
	cur    *server // nil while the endpoint is off
	closed bool
	// wg counts the serving goroutine of every server and the graceful
	// shutdowns of retired ones.
	wg sync.WaitGroup
}

var _ reload.Stage = (*Admin)(nil)

// New returns an endpoint that is off until the reloader prepares a
// config with admin.address set.
func New(o Options) *Admin {
	a := &Admin{
		log:      o.Log,
		sup:      o.Supervisor,
		reloader: o.Reloader,
		upgrader: o.Upgrader,
		source:   o.Source,
		started:  time.Now(),
	}
	// net/http and promhttp report through a standard logger: accept
	// retries, panics in a handler, failed scrapes. None is routine.
	a.errLog = o.Log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Warn})
	a.handler = a.routes(o.Metrics)
	return a
}

// Handler is the endpoint's HTTP handler, for tests and for embedding.
func (a *Admin) Handler() http.Handler { return a.handler }

// Addr is the address the endpoint is bound to (the port picked for ":0"
// included), or "" while it is off.
func (a *Admin) Addr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur == nil {
		return ""
	}
	return a.cur.ln.Addr().String()
}

// SetDraining makes /healthz answer 503 "draining", so that a load
// balancer stops sending new clients while open connections finish.
func (a *Admin) SetDraining() { a.draining.Store(true) }

// Close stops the endpoint: the socket closes at once, requests in flight
// get up to shutdownTimeout to finish. It returns when every goroutine the
// Admin started has ended, including shutdowns left running by a move.
func (a *Admin) Close() error {
	a.mu.Lock()
	cur := a.cur
	a.cur = nil
	first := !a.closed
	a.closed = true
	a.mu.Unlock()
	if first && cur != nil {
		a.retire(cur)
	}
	a.wg.Wait()
	return nil
}

// server is one bound endpoint: a socket and the http.Server on it.
type server struct {
	addr string // as configured, which is what a reload compares
	ln   *onceCloseListener
	http *http.Server
}

func (a *Admin) newServer(addr string, ln net.Listener) *server {
	return &server{
		addr: addr,
		ln:   &onceCloseListener{Listener: newLimitListener(ln, MaxConns)},
		http: &http.Server{
			Handler:           a.handler,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          a.errLog,
		},
	}
}

// serve runs s in a goroutine owned by a; it ends when s is retired.
func (a *Admin) serve(s *server) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		err := s.http.Serve(s.ln)
		// retire closes the socket itself before shutting the server
		// down, so a closed socket is a normal end too.
		if !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			a.log.Error("admin endpoint stopped serving", "address", s.ln.Addr().String(), "error", err)
		}
	}()
	a.log.Info("admin endpoint up", "address", s.ln.Addr().String())
}

// retire closes s's socket now, so that the address refuses from the
// moment retire returns, and shuts the server down in the background:
// the caller may be a POST /reload served by s itself, which could not
// finish while it waited for s to go idle.
func (a *Admin) retire(s *server) {
	_ = s.ln.Close()
	a.log.Info("admin endpoint down", "address", s.ln.Addr().String())
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := s.http.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
			a.log.Warn("admin endpoint: requests still running after shutdown timeout; closing them", "address", s.ln.Addr().String())
			_ = s.http.Close()
		}
	}()
}

// onceCloseListener makes Close idempotent: retire closes the socket, and
// http.Server closes it again on Shutdown; the second close must not be
// reported as a failure.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}
