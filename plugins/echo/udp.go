package echo

import (
	"context"
	"fmt"

	"github.com/sluice-dev/sluice/pkg/chain"
)

var _ chain.PacketHandler = (*Handler)(nil)

// ServePacket sends the datagram back to its sender, from the listener's
// socket. A failed send ends the flow: the error says why (no route, a
// full socket buffer) and the next datagram starts afresh.
func (h *Handler) ServePacket(_ context.Context, p *chain.Packet) error {
	if _, err := p.Flow.Reply(p.Data); err != nil {
		return fmt.Errorf("echo: reply: %w", err)
	}
	return nil
}
