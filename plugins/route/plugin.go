// Package route is the route handler: a terminal handler that looks at a
// connection's first bytes (a TLS ClientHello's server name and ALPN, an
// HTTP/1.x Host, an SSH banner) or at the client's address, picks the
// first of its routes that matches, and hands the connection to that
// route's own chain, with the bytes it looked at replayed exactly.
//
// The bytes are read (pkg/peek.Read: on a socket, one receive per wait)
// and handed to the chosen chain in a peek.Replay; pkg/relay sends them
// first and then works on the socket under it, so the proxy's splice and
// event loop apply unchanged.
package route

import (
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/pkg/bytesize"
	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/registry"
)

// Name is the handler's name in a chain.
const Name = "route"

// Defaults of the options.
const (
	DefaultTimeout  = 3 * time.Second
	DefaultMaxBytes = 16 << 10
	// MaxMaxBytes bounds max_bytes: every connection may buffer that
	// much while the route decides, and a ClientHello or an HTTP
	// request head fits in a few KiB.
	MaxMaxBytes = 1 << 20
)

func init() {
	registry.Register(Name, func() any { return new(Handler) })
}

// Handler is the route handler. Its exported fields are its options.
type Handler struct {
	// Timeout bounds the wait for enough first bytes to decide; when it
	// passes, the bytes so far are judged as final.
	Timeout time.Duration `mapstructure:"timeout"`
	// MaxBytes is the most it buffers to decide.
	MaxBytes bytesize.Size `mapstructure:"max_bytes"`
	// Routes are tried in order; the first that matches wins.
	Routes []Route `mapstructure:"routes"`
	// Default serves what no route matched; without it such a
	// connection is closed.
	Default []registry.Spec `mapstructure:"default"`

	// Runtime state, set by Validate and Provision.
	matchers  []matcher
	needBytes bool      // some matcher looks at bytes: read them
	targets   []*target // routes' in order, then the default's
	dflt      *target   // nil: close
	timedOut  prometheus.Counter
	closed    prometheus.Counter
	log       hclog.Logger
	bufSize   int
}

// Route is one entry of routes.
type Route struct {
	// Name is the route's name in the access log and the metrics; ""
	// names it by its index.
	Name  string          `mapstructure:"name"`
	Match Match           `mapstructure:"match"`
	Chain []registry.Spec `mapstructure:"chain"`
}

// Match is what a route matches. Every key set must hold; the values of
// one key are alternatives.
type Match struct {
	SNI      []string `mapstructure:"sni"`
	ALPN     []string `mapstructure:"alpn"`
	HTTPHost []string `mapstructure:"http_host"`
	Protocol string   `mapstructure:"protocol"`
	Remote   []string `mapstructure:"remote"`
}

// target is a built chain a decision hands the connection to.
type target struct {
	label    string // the route label of the log line and the metric
	next     chain.StreamHandler
	handlers []any
	specs    []registry.Spec
	count    prometheus.Counter
	// notes says the chain reads annotations (a log in it): the route
	// annotates for it even when nothing before the route does.
	notes bool
}

// ReadsAnnotations reports whether a chain of the route's reads
// annotations (chain.AnnotationReader), for a route that runs this one.
func (h *Handler) ReadsAnnotations() bool {
	for _, t := range h.targets {
		if t.notes {
			return true
		}
	}
	return false
}

var (
	_ chain.StreamHandler    = (*Handler)(nil)
	_ chain.Validator        = (*Handler)(nil)
	_ chain.NetworkValidator = (*Handler)(nil)
	_ chain.Provisioner      = (*Handler)(nil)
	_ chain.StatusReporter   = (*Handler)(nil)
)

// label is route i's name in the log and the metrics.
func (r *Route) label(i int) string {
	if r.Name != "" {
		return r.Name
	}
	return strconv.Itoa(i)
}

// Provision builds every route's chain, and the default's, each as a
// listener's chain is built (registry.BuildStream), in a scope of its own
// so that a ratelimit in one never shares another's state.
func (h *Handler) Provision(pc chain.ProvisionContext) error {
	if h.Timeout == 0 {
		h.Timeout = DefaultTimeout
	}
	if h.MaxBytes == 0 {
		h.MaxBytes = DefaultMaxBytes
	}
	h.bufSize = min(int(h.MaxBytes), firstBuf)
	h.log = pc.Logger.Named(Name)
	decisions, err := chain.Register(pc.Metrics, newDecisions())
	if err != nil {
		return err
	}
	if err := h.compile(); err != nil {
		return err
	}
	build := func(scope, label string, specs []registry.Spec) (*target, error) {
		npc := pc
		npc.Scope = joinScope(pc.Scope, scope)
		next, handlers, err := registry.BuildStream(npc, specs)
		if err != nil {
			return nil, err
		}
		t := &target{label: label, next: next, handlers: handlers, specs: specs, count: decisions.WithLabelValues(label),
			notes: chain.ReadsAnnotations(handlers)}
		h.targets = append(h.targets, t)
		return t, nil
	}
	for i := range h.Routes {
		r := &h.Routes[i]
		scope := "routes[" + strconv.Itoa(i) + "]"
		if _, err := build(scope, r.label(i), r.Chain); err != nil {
			_ = h.Close()
			return fmt.Errorf("%s.%w", scope, err)
		}
	}
	if len(h.Default) > 0 {
		t, err := build("default", "default", h.Default)
		if err != nil {
			_ = h.Close()
			return fmt.Errorf("default.%w", err)
		}
		h.dflt = t
	}
	h.timedOut = decisions.WithLabelValues("timeout")
	h.closed = decisions.WithLabelValues("closed")
	return nil
}

// joinScope names a nested chain within its listener. A chain holds at
// most one route (it is terminal), so the route's own place in it is not
// needed to tell nested chains apart, and a middleware added before the
// route keeps the nested handlers' shared state.
func joinScope(parent, scope string) string {
	if parent == "" {
		return scope
	}
	return parent + "." + scope
}

// Close closes every nested chain's handlers.
func (h *Handler) Close() error {
	var all []any
	for _, t := range h.targets {
		all = append(all, t.handlers...)
	}
	h.targets = nil
	return chain.CloseAll(all)
}

// RouteStatus is one nested chain's part of /status.
type RouteStatus struct {
	Route    string          `json:"route"`
	Handlers []HandlerStatus `json:"handlers"`
}

// HandlerStatus is one nested handler's state, as the listener's own
// handlers are shown.
type HandlerStatus struct {
	Index   int    `json:"index"`
	Handler string `json:"handler"`
	Status  any    `json:"status"`
}

// Status shows the state of the nested handlers that report one (the
// proxy's upstreams), so that /status keeps showing upstreams behind a
// route.
func (h *Handler) Status() any {
	out := []RouteStatus{}
	for _, t := range h.targets {
		var hs []HandlerStatus
		for i, nh := range t.handlers {
			if r, ok := nh.(chain.StatusReporter); ok {
				hs = append(hs, HandlerStatus{Index: i, Handler: t.specs[i].Handler, Status: r.Status()})
			}
		}
		if len(hs) > 0 {
			out = append(out, RouteStatus{Route: t.label, Handlers: hs})
		}
	}
	return map[string]any{"routes": out}
}
