//go:build !unix

package proxy

import (
	"net"

	"github.com/sluice-dev/sluice/pkg/relay"
)

// recvLoop reads datagrams from c and hands each to handle, until an
// error. Without RawConn readiness the buffer is held while waiting.
func recvLoop(c *net.UDPConn, handle func([]byte)) error {
	bufp := relay.GetDatagramBuffer()
	defer relay.PutDatagramBuffer(bufp)
	for {
		n, err := c.Read(*bufp)
		if err != nil {
			return err
		}
		handle((*bufp)[:n])
	}
}
