package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/fdbudget"
	"github.com/sluice-dev/sluice/pkg/relay"
)

// ErrNoUpstream is what a connection ends with when no upstream could be
// reached; the error's text names every upstream tried and why it failed.
var ErrNoUpstream = errors.New("no upstream reachable")

// errAllDown is a client turned away because the health checks have
// taken every upstream down.
var errAllDown = fmt.Errorf("%w: every upstream is down (health_check)", ErrNoUpstream)

// noUpstreamError lists the upstreams tried for one client. It unwraps to
// ErrNoUpstream only: the dial errors inside (a reset, a refusal) are the
// upstreams' doing, and must not make the supervisor file the connection
// under "the client went away".
type noUpstreamError struct {
	tried []string
	errs  []error
}

func (e *noUpstreamError) Error() string {
	var b strings.Builder
	b.WriteString(ErrNoUpstream.Error())
	b.WriteString(" (tried ")
	b.WriteString(strings.Join(e.tried, ", "))
	b.WriteString(")")
	for _, err := range e.errs {
		b.WriteString("; ")
		b.WriteString(err.Error())
	}
	return b.String()
}

func (e *noUpstreamError) Unwrap() error { return ErrNoUpstream }

// maxTries bounds the stack buffer for the try order; pools larger than
// this simply allocate.
const maxTries = 16

// ServeStream connects to an upstream, trying the next one when a connect
// fails, then relays bytes both ways until both sides are done.
func (h *Handler) ServeStream(ctx context.Context, c *chain.Conn) error {
	var first firstBytes
	defer first.release()
	up, u, err := h.dial(ctx, c, &first)
	if err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	u.opened()
	defer u.closed()
	defer up.Close()
	if b := first.pending(); b != nil {
		if _, err := up.Write(b); err != nil {
			return fmt.Errorf("proxy: %s: client to upstream: write: %w", u.url, err)
		}
		first.delivered(c)
	}
	// relay counts the bytes, enforces the idle timeout and, between the
	// sockets themselves, splices bulk data and runs the event loop; an
	// upstream inside TLS is copied through a buffer.
	if err := relay.Relay(ctx, c, up, &h.paths); err != nil {
		return fmt.Errorf("proxy: %s: %w", u.url, err)
	}
	return nil
}

// dial connects to the first upstream of the balance's order that
// accepts (and, with tls, completes a verified handshake) within
// connect_timeout. Each failure is counted and marks the upstream down
// for fail_timeout.
func (h *Handler) dial(ctx context.Context, c *chain.Conn, first *firstBytes) (net.Conn, *upstream, error) {
	var buf [maxTries]*upstream
	var nerr *noUpstreamError
	for _, u := range h.pool.order(buf[:0]) {
		conn, err := h.connect(ctx, u, c, first)
		if err == nil {
			h.pool.succeeded(u)
			return conn, u, nil
		}
		if ce := (*clientError)(nil); errors.As(err, &ce) {
			return nil, nil, ce
		}
		if ctx.Err() != nil || fdbudget.IsShortage(err) {
			// The listener is going away, or sluice is out of
			// descriptors; neither says anything about the upstream.
			return nil, nil, fmt.Errorf("connecting to %s: %w", u.url, err)
		}
		h.pool.failed(u, err)
		if nerr == nil {
			nerr = &noUpstreamError{}
		}
		nerr.tried = append(nerr.tried, u.url)
		nerr.errs = append(nerr.errs, fmt.Errorf("%s: %w", u.url, err))
		if h.log.IsDebug() {
			c.Logger().Debug("upstream connect failed; trying the next", "upstream", u.url, "error", err)
		}
	}
	if nerr == nil {
		// Provision guarantees upstreams: every one is down by its
		// health checks. Fail at once rather than wait on a dead pool.
		h.unavailable.Inc()
		return nil, nil, errAllDown
	}
	return nil, nil, nerr
}

// connect makes one attempt on u within connect_timeout: the connect,
// the PROXY header when send_proxy_protocol is set, and the TLS handshake
// when tls is. The header goes first and in clear, as HAProxy's send-proxy
// with ssl does: the upstream reads it before the TLS it terminates.
func (h *Handler) connect(ctx context.Context, u *upstream, c *chain.Conn, first *firstBytes) (net.Conn, error) {
	if u.tls == nil && u.literal {
		ctx = deadlineCtx{ctx, time.Now().Add(h.ConnectTimeout)}
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.ConnectTimeout)
		defer cancel()
	}
	conn, err := h.dialer.DialContext(ctx, u.network, u.address)
	if err != nil {
		return nil, err
	}
	if h.sendVersion != 0 {
		deadline, _ := ctx.Deadline()
		if err := h.writeProxyHeader(conn, c, first, u.tls == nil, deadline); err != nil {
			_ = conn.Close()
			return nil, err
		}
	}
	if u.tls == nil {
		return conn, nil
	}
	return handshake(ctx, conn, u.tls)
}

// deadlineCtx is ctx with a connect attempt's deadline, for a dial that
// looks nothing up and does no TLS handshake: net's connect waits for the
// socket under that deadline (the poller's, armed only when the connect
// did not finish at once) and gives up when ctx is cancelled, so nothing
// else needs it. context.WithTimeout would arm a timer and register with
// ctx on every connection; on a nearby upstream the connect is done before
// either matters. A lookup or a handshake watches only Done, never the
// deadline: those keep context.WithTimeout.
type deadlineCtx struct {
	context.Context
	deadline time.Time
}

func (c deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }
