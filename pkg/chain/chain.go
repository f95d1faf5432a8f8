// Package chain defines what a handler is and how a listener's list of
// handlers is folded into one callable chain. It knows no plugin: handlers
// reach it through pkg/registry.
package chain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

// StreamHandler serves one stream connection (TCP or Unix). A terminal
// handler such as echo or proxy implements it directly; a middleware's
// wrapper implements it around the next handler. The returned error is
// logged once per connection by the supervisor.
type StreamHandler interface {
	ServeStream(ctx context.Context, c *Conn) error
}

// StreamHandlerFunc adapts a function to StreamHandler.
type StreamHandlerFunc func(ctx context.Context, c *Conn) error

// ServeStream calls f.
func (f StreamHandlerFunc) ServeStream(ctx context.Context, c *Conn) error { return f(ctx, c) }

// StreamMiddleware wraps the rest of a chain. WrapStream runs once per
// chain build, not per connection, so per-connection work belongs in the
// returned handler.
type StreamMiddleware interface {
	WrapStream(next StreamHandler) StreamHandler
}

// Validator is implemented by handlers whose options need checking after
// decoding. It must be pure: validate runs it without binding anything.
type Validator interface {
	Validate() error
}

// Provisioner is implemented by handlers that set up runtime state (pools,
// limiters, upstream tables) once the options are known to be valid.
type Provisioner interface {
	Provision(ctx ProvisionContext) error
}

// ProvisionContext tells a handler where it runs.
type ProvisionContext struct {
	// Listener is the listener's name.
	Listener string
	// Network is the listener's network (tcp, unix, udp, ...).
	Network string
	// IdleTimeout is the listener's idle_timeout (0: never). On a UDP
	// listener it is how long a flow lives quiet, never 0: an
	// idle_timeout of 0 means DefaultFlowIdleTimeout there.
	IdleTimeout time.Duration
	// Logger is the listener's logger, for lifecycle messages.
	Logger hclog.Logger
	// Metrics is where a handler registers the collectors it counts what
	// it refuses or fails at, through Register. The label listener is
	// already set on it. nil in tests that do not look at metrics.
	Metrics prometheus.Registerer
	// Shared keeps a handler's state across reloads (see Shared). nil:
	// nothing is shared.
	Shared *Shared
	// Scope names the chain the handler is in within its listener: ""
	// for the listener's own chain, and for a chain nested in a handler
	// (a route's) that handler's place and the nested chain's, e.g.
	// "chain[1].routes[0]". Handlers that keep state in Shared include
	// it in their key, so that two nested chains of one listener never
	// take each other's state, while adding a handler before one keeps
	// its state across a reload.
	Scope string
}

// IsTerminal reports whether h can end a stream chain.
func IsTerminal(h any) bool {
	_, ok := h.(StreamHandler)
	return ok
}

// IsMiddleware reports whether h can stand before the end of a stream chain.
func IsMiddleware(h any) bool {
	_, ok := h.(StreamMiddleware)
	return ok
}

// ErrNotTerminal is returned by Compile when the last handler cannot end
// a chain.
var ErrNotTerminal = errors.New("the last handler of a chain must be a terminal handler")

// Compile folds handlers, in config order, into one StreamHandler: the last
// must be terminal, all others middleware. The result is immutable and safe
// for concurrent use, so a listener can hold it in an atomic pointer and
// read it once per connection.
func Compile(handlers []any) (StreamHandler, error) {
	if len(handlers) == 0 {
		return nil, errors.New("a chain needs at least one handler")
	}
	last, ok := handlers[len(handlers)-1].(StreamHandler)
	if !ok {
		return nil, ErrNotTerminal
	}
	h := last
	for i := len(handlers) - 2; i >= 0; i-- {
		mw, ok := handlers[i].(StreamMiddleware)
		if !ok {
			return nil, fmt.Errorf("chain[%d]: a terminal handler can only stand at the end of a chain", i)
		}
		h = mw.WrapStream(h)
	}
	return h, nil
}

// CloseAll closes every handler that holds resources (implements
// io.Closer), returning the errors joined.
func CloseAll(handlers []any) error {
	var errs []error
	for _, h := range handlers {
		if c, ok := h.(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// StatusReporter is implemented by handlers with live state an operator
// wants to see in the admin endpoint's /status (the proxy's upstreams).
// Status must be safe to call at any time from any goroutine and return
// a value that encodes as JSON.
type StatusReporter interface {
	Status() any
}
