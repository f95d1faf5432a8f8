package log

import (
	"context"
	"errors"
	"io"
	"syscall"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// errPanicked is recorded when the rest of the chain panicked; the
// supervisor recovers the panic and logs it with its stack.
var errPanicked = errors.New("handler panicked")

// ReadsAnnotations: the record carries them (chain.AnnotationReader).
func (h *Handler) ReadsAnnotations() bool { return true }

// WrapStream records each connection when the rest of the chain is done
// with it. Byte counts come from the connection's counters, kept by the
// terminal handler, so without payload c.Conn is left bare and the
// terminal handler can still splice.
func (h *Handler) WrapStream(next chain.StreamHandler) chain.StreamHandler {
	return chain.StreamHandlerFunc(func(ctx context.Context, c *chain.Conn) error {
		c.WantAnnotations()
		if h.Payload {
			c.Conn = newPayloadConn(c.Conn, h.log, c)
		}
		err := errPanicked
		defer func() { h.record(c, err) }()
		err = next.ServeStream(ctx, c)
		return err
	})
}

// record writes the connection's one record. The listener's logger is
// asked first, so that a filtered-out record costs no allocation.
func (h *Handler) record(c *chain.Conn, err error) {
	if h.log.GetLevel() > h.level || h.SkipEmpty && empty(c.BytesIn(), c.BytesOut(), err) {
		return
	}
	notes := c.Annotations()
	args := make([]any, 0, 8+len(notes))
	args = append(args,
		"duration", time.Since(c.Start()),
		"bytes_in", c.BytesIn(),
		"bytes_out", c.BytesOut(),
	)
	args = append(args, notes...)
	if err != nil {
		args = append(args, "error", err)
	}
	c.Logger().Named(Name).Log(h.level, "connection closed", args...)
}

// empty reports whether a connection that moved in and out bytes and
// ended with err is one skip_empty leaves out: nothing moved, and nothing
// went wrong but the peer going away. A health check that connects and
// closes ends with nil; HAProxy's resets (ECONNRESET), and a write may
// find the peer gone (EPIPE). A refusal (chain.ErrRejected), an upstream
// that could not be reached, an idle timeout or a drain are errors of
// their own and keep their record.
func empty(in, out int64, err error) bool {
	if in != 0 || out != 0 {
		return false
	}
	return err == nil || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
