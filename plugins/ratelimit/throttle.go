package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"golang.org/x/time/rate"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// throttledConn slows down what is read from the client to its limiter's
// rate. Each read asks for at most a burst's worth, so that a large buffer
// is split rather than refused, and returns only once the bytes it read
// are paid for: data is delayed, never dropped, and while it waits the
// kernel's buffers push back on the client. Writes are not touched.
type throttledConn struct {
	net.Conn
	ctx context.Context
	lim *rate.Limiter
}

func newThrottled(ctx context.Context, c net.Conn, r rate.Limit, burst int) *throttledConn {
	return &throttledConn{Conn: c, ctx: ctx, lim: rate.NewLimiter(r, burst)}
}

// Read reads at most a burst's worth, then waits for its tokens. The wait
// ends early only when ctx does (the chain's generation is being closed),
// and then the bytes read are still returned, with the error.
func (t *throttledConn) Read(p []byte) (int, error) {
	if b := t.lim.Burst(); len(p) > b {
		p = p[:b]
	}
	n, err := t.Conn.Read(p)
	if n > 0 {
		if werr := t.lim.WaitN(t.ctx, n); werr != nil && err == nil {
			err = fmt.Errorf("ratelimit: waiting for read tokens: %w", werr)
		}
	}
	return n, err
}

var errNoHalfClose = errors.New("connection does not support half-close")

// CloseWrite forwards half-close, which echo and proxy rely on.
func (t *throttledConn) CloseWrite() error {
	if cw, ok := t.Conn.(chain.CloseWriter); ok {
		return cw.CloseWrite()
	}
	return errNoHalfClose
}

// ReadFrom keeps the write side (to the client) as fast as it was: when
// the wrapped connection is a socket, io.Copy into it can still splice.
func (t *throttledConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := t.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{t.Conn}, r)
}

// writerOnly hides every method but Write, so io.Copy cannot loop back
// into ReadFrom.
type writerOnly struct{ io.Writer }
