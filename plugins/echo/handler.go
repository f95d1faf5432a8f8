package echo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// ServeStream echoes until the client closes its side, then finishes
// writing and half-closes ours, so that "socat -" style clients see every
// byte back before EOF.
func (h *Handler) ServeStream(_ context.Context, c *chain.Conn) error {
	bufp := chain.GetBuffer()
	defer chain.PutBuffer(bufp)
	if err := echoLoop(c, *bufp); err != nil {
		return err
	}
	chain.CloseWrite(c.Conn)
	return nil
}

// echoLoop copies c to itself with buf. With an idle timeout the deadline
// is set a quarter beyond it and pushed forward only once less than the
// timeout remains, so a busy connection does not pay for a timer update on
// every read: a silent connection closes between 1× and 1.25× the timeout
// after its last byte, never before.
func echoLoop(c *chain.Conn, buf []byte) error {
	idle := c.IdleTimeout()
	var deadline time.Time
	for {
		if idle > 0 {
			if now := time.Now(); deadline.Sub(now) < idle {
				deadline = now.Add(idle + idle/4)
				if err := c.SetDeadline(deadline); err != nil {
					return fmt.Errorf("echo: set deadline: %w", err)
				}
			}
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
