package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// Provision resolves the rejection counters and takes the listener's
// limiter state: the one an identical ratelimit of the running chain uses,
// or a new one. The options were checked by registry.New.
func (h *Handler) Provision(pc chain.ProvisionContext) error {
	h.limits = h.resolve()
	h.log = pc.Logger
	rejected, err := chain.Register(pc.Metrics, newRejected())
	if err != nil {
		return err
	}
	for r := none + 1; r < numReasons; r++ {
		if h.limits.shared.applies(r) {
			h.rejected[r] = rejected.WithLabelValues(r.String())
		}
	}
	h.shared = pc.Shared
	h.key = stateKey{listener: pc.Listener, scope: pc.Scope, limits: h.limits.shared}
	h.state = h.shared.Acquire(h.key, func() any { return newState(h.key.limits) }).(*state)
	return nil
}

// Close gives the limiter state back; the last chain to use it forgets it.
func (h *Handler) Close() error {
	h.closeOnce.Do(func() {
		if h.state != nil {
			h.shared.Release(h.key)
		}
	})
	return nil
}

// rejectErrs are made once: a flood of rejections allocates no errors.
var rejectErrs = func() (errs [numReasons]error) {
	for r := none + 1; r < numReasons; r++ {
		errs[r] = fmt.Errorf("ratelimit: %w (%s)", chain.ErrRejected, r)
	}
	return errs
}()

// WrapStream admits or refuses each connection before next sees it. An
// admitted connection holds its place (a connection slot, its address's
// entry) until next returns. Only with bytes_per_second is c.Conn wrapped;
// otherwise the socket stays bare for the terminal handler to splice.
func (h *Handler) WrapStream(next chain.StreamHandler) chain.StreamHandler {
	return chain.StreamHandlerFunc(func(ctx context.Context, c *chain.Conn) error {
		t, r := h.state.admit(sourceOf(c.RemoteAddr()), time.Now())
		if r != none {
			return h.reject(c, r)
		}
		defer func() { h.state.done(t, time.Now()) }()
		if h.limits.bytesRate > 0 {
			c.Conn = newThrottled(ctx, c.Conn, h.limits.bytesRate, h.limits.bytesBurst)
		}
		return next.ServeStream(ctx, c)
	})
}

// reject closes c at once, counts and logs why, and returns an error that
// wraps chain.ErrRejected so that an earlier log handler records it.
func (h *Handler) reject(c *chain.Conn, r reason) error {
	h.rejected[r].Inc() // first: whoever sees the close sees the count
	_ = c.Close()
	if h.log.IsDebug() {
		c.Logger().Debug("connection rejected", "reason", r.String())
	}
	return rejectErrs[r]
}
