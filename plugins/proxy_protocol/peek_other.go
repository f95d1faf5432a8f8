//go:build !unix

package proxyprotocol

import (
	"net"
	"time"
)

// peekHeader needs MSG_PEEK; elsewhere the header is read (readHeader)
// and the bytes after it replayed.
func peekHeader(net.Conn, time.Time) (readResult, bool) { return readResult{}, false }
