//go:build !linux

package relay

import (
	"net"

	"github.com/sluice-dev/sluice/pkg/chain"
)

func closeWrite(c net.Conn) bool { return chain.CloseWrite(c) }
