//go:build !unix

package peek

import (
	"net"
	"time"
)

// readSocket is the receive loop of Read on a socket, where there is one.
func readSocket(net.Conn, []byte, time.Time, Look) ([]byte, bool, error) { return nil, false, nil }
