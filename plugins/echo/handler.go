package echo

import (
	"context"
	"fmt"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/relay"
)

// ServeStream echoes until the client closes its side, then finishes
// writing and half-closes ours, so that "socat -" style clients see every
// byte back before EOF. The bytes move through pkg/relay: on the socket
// itself, no buffer while the connection is quiet, a plain read/write
// loop for small messages and splice(2) for bulk; behind a middleware's
// wrapper, a plain loop over the wrapper. relay also counts the bytes and
// enforces the listener's idle_timeout.
func (h *Handler) ServeStream(_ context.Context, c *chain.Conn) error {
	if err := relay.Copy(c, c.Conn, c.Conn, relay.In|relay.Out, &h.paths); err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	return nil
}
