//go:build !linux

package proxy

import (
	"context"
	"net"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// loopSet is empty where there is no epoll: every pair gets goroutines.
type loopSet struct{}

// loopPair reports false: no event loop here.
func (h *Handler) loopPair(ctx context.Context, c *chain.Conn, up net.Conn, url string) (bool, error) {
	return false, nil
}
