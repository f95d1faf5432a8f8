//go:build !unix

package peek

import (
	"net"
	"time"
)

// Socket needs MSG_PEEK; elsewhere the bytes are read (Read) and replayed.
func Socket(net.Conn, []byte, time.Time, Look) ([]byte, bool, error) { return nil, false, nil }

// readSocket is the receive loop of Read on a socket, where there is one.
func readSocket(net.Conn, []byte, time.Time, Look) ([]byte, bool, error) { return nil, false, nil }
