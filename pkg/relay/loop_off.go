//go:build !linux

package relay

import (
	"context"
	"net"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// loopRelay reports false: every pair gets goroutines.
func loopRelay(context.Context, *chain.Conn, net.Conn, *Stats) (bool, error) { return false, nil }

// loopAvailable: only Linux has the event loop.
const loopAvailable = false
