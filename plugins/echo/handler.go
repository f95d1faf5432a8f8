package echo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// ServeStream echoes until the client closes its side, then finishes
// writing and half-closes ours, so that "socat -" style clients see every
// byte back before EOF.
//
// When no middleware wrapped the connection, echo reads the socket itself
// (see echoIdle): no buffer while the connection is quiet, a plain
// read/write loop for small messages, and splice(2) once a read fills the
// buffer. Behind a wrapper it runs a plain loop over the wrapper.
func (h *Handler) ServeStream(_ context.Context, c *chain.Conn) error {
	var err error
	if r, ok := idleReader(c); ok {
		err = echoIdle(c, r)
	} else {
		bufp := chain.GetBuffer()
		err = echoLoop(c, *bufp)
		chain.PutBuffer(bufp)
	}
	if err != nil {
		return err
	}
	chain.CloseWrite(c.Conn)
	return nil
}

func idleReader(c *chain.Conn) (*chain.IdleReader, bool) {
	if c.Wrapped() {
		return nil, false
	}
	return chain.NewIdleReader(c.Conn)
}

// idler keeps the connection's deadline at least idle_timeout ahead. The
// deadline is set a quarter beyond the timeout and pushed forward only
// once less than the timeout remains, so a busy connection does not pay
// for a timer update on every read: a silent connection closes between 1×
// and 1.25× the timeout after its last byte, never before.
type idler struct {
	c        net.Conn
	idle     time.Duration
	deadline time.Time
}

func (d *idler) refresh() error {
	if d.idle <= 0 {
		return nil
	}
	now := time.Now()
	if d.deadline.Sub(now) >= d.idle {
		return nil
	}
	d.deadline = now.Add(d.idle + d.idle/4)
	if err := d.c.SetDeadline(d.deadline); err != nil {
		return fmt.Errorf("echo: set deadline: %w", err)
	}
	return nil
}

// echoLoop copies c to itself with buf, for connections a middleware
// wrapped.
func echoLoop(c *chain.Conn, buf []byte) error {
	d := idler{c: c, idle: c.IdleTimeout()}
	for {
		if err := d.refresh(); err != nil {
			return err
		}
		n, rerr := c.Read(buf)
		if n > 0 {
			c.AddIn(int64(n))
			w, werr := c.Write(buf[:n])
			c.AddOut(int64(w))
			if werr != nil {
				return fmt.Errorf("echo: write: %w", timeoutAsIdle(werr))
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return nil
			}
			return fmt.Errorf("echo: read: %w", timeoutAsIdle(rerr))
		}
	}
}

func timeoutAsIdle(err error) error {
	if chain.IsTimeout(err) {
		return chain.ErrIdleTimeout
	}
	return err
}
