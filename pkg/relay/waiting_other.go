//go:build !unix

package relay

import "net"

// ReadWaiting needs a socket's descriptor, which only Unix systems give
// in the form it reads: elsewhere it never applies.
func ReadWaiting(net.Conn, []byte) (int, bool, error) { return 0, false, nil }
