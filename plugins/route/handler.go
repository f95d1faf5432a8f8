package route

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/peek"
)

// firstBuf is the first look's buffer: a ClientHello (post-quantum key
// shares included) or an HTTP request's headers fit; it grows, up to
// max_bytes, when they do not.
const firstBuf = 4 << 10

// bufs holds the first looks' buffers, which the Replay of the bytes seen
// gives back once the chosen chain took them.
var bufs = sync.Pool{New: func() any { b := make([]byte, firstBuf); return &b }}

// putBuf gives a look's buffer back to bufs: a function, not a method
// value, so that passing it allocates nothing.
func putBuf(b any) { bufs.Put(b) }

// errNoRoute is what a connection that matched no route, with no
// default, ends with.
var errNoRoute = fmt.Errorf("route: %w (no route matched, and there is no default)", chain.ErrRejected)

// ServeStream decides on the connection's route and hands it to that
// route's chain.
func (h *Handler) ServeStream(ctx context.Context, c *chain.Conn) error {
	in := newInput(c.Conn, c.RemoteAddr())
	i, decided := h.decide(&in)
	timedOut := false
	if !decided {
		var err error
		i, timedOut, err = h.look(c, &in)
		if err != nil {
			return err
		}
	}
	var t *target
	switch {
	case i >= 0:
		t = h.targets[i]
	case h.dflt == nil:
		h.closed.Inc()
		if c.Annotating() {
			h.annotate(c, &in)
			c.Annotate("route", "closed")
		}
		_ = c.Close()
		return errNoRoute
	default:
		t = h.dflt
	}
	if timedOut && t == h.dflt {
		h.timedOut.Inc()
	} else {
		t.count.Inc()
	}
	// Annotations cost allocations; only a log before the route or in
	// the chosen chain reads them.
	if c.Annotating() || t.notes {
		h.annotate(c, &in)
		c.Annotate("route", t.label)
	}
	return t.next.ServeStream(ctx, c)
}

// decide walks the routes in order with what in shows: the first that
// matches wins, and one that cannot tell yet stops the walk (a later
// route must not win over it). i is -1 for the default.
func (h *Handler) decide(in *input) (i int, decided bool) {
	for i := range h.matchers {
		switch h.matchers[i].match(in) {
		case yes:
			return i, true
		case more:
			return 0, false
		}
	}
	return -1, true
}

// look reads the first bytes until they decide, max_bytes is reached or
// the timeout passes; then what was seen is judged as final. The bytes
// read are handed to the chosen chain first (peek.Replay): on a socket
// each wait ends in one receive that takes them (peek.Read), so deciding
// costs no receive that the relay would make again, and the proxy sends
// them on before it relays the socket itself.
func (h *Handler) look(c *chain.Conn, in *input) (i int, timedOut bool, err error) {
	deadline := time.Now().Add(h.Timeout)
	done := false
	fn := func(seen []byte) (bool, int) {
		in.data = seen
		if i, done = h.decide(in); done {
			return true, 0
		}
		// Should the buffer be full, it doubles, up to max_bytes.
		return false, min(2*len(seen), int(h.MaxBytes))
	}
	bp := bufs.Get().(*[]byte)
	seen, rerr := peek.Read(c.Conn, (*bp)[:h.bufSize], deadline, fn)
	in.data = nil // the parses keep no reference to the bytes
	// bp goes back once the chosen chain took the bytes (the proxy
	// sends them first).
	c.Conn = peek.ReplayPooled(c.Conn, seen, seen, bp, putBuf)
	return h.judge(in, done, i, rerr)
}

// judge makes the final decision once the look ended: what was seen is
// all there is. A timeout or the client's EOF is no failure: the bytes
// so far decide (a server-first client gets the default at the timeout).
func (h *Handler) judge(in *input, done bool, i int, err error) (int, bool, error) {
	timedOut := chain.IsTimeout(err)
	if err != nil && !timedOut && !errors.Is(err, io.EOF) {
		return 0, false, fmt.Errorf("route: reading the first bytes: %w", err)
	}
	if done {
		return i, false, nil
	}
	in.final = true
	i, _ = h.decide(in)
	return i, timedOut, nil
}

// annotate puts what the connection showed on its access log line.
func (h *Handler) annotate(c *chain.Conn, in *input) {
	// After a tls middleware, that one logs the server name and ALPN.
	if in.tlsState == nil && in.helloV == yes {
		if in.hello.sni != "" {
			c.Annotate("sni", in.hello.sni)
		}
		if len(in.hello.alpn) > 0 {
			c.Annotate("alpn", strings.Join(in.hello.alpn, ","))
		}
	}
	if in.hostV == yes {
		c.Annotate("http_host", in.host)
	}
}
