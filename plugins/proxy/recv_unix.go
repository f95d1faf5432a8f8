//go:build unix

package proxy

import (
	"net"
	"os"
	"syscall"

	"github.com/sluice-dev/sluice/pkg/relay"
)

// recvLoop reads datagrams from c and hands each to handle, until an
// error. A quiet flow must not pin a 64 KiB buffer: the buffer is taken
// from the pool only once the socket is readable, inside RawConn.Read,
// and returned right after handle.
func recvLoop(c *net.UDPConn, handle func([]byte)) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	for {
		var (
			n    int
			rerr error
			bufp *[]byte
		)
		err := rc.Read(func(fd uintptr) bool {
			bufp = relay.GetDatagramBuffer()
			for {
				n, rerr = syscall.Read(int(fd), *bufp)
				if rerr != syscall.EINTR {
					break
				}
			}
			if rerr == syscall.EAGAIN {
				relay.PutDatagramBuffer(bufp)
				bufp = nil
				return false // wait until readable
			}
			return true
		})
		if err == nil && rerr != nil {
			err = os.NewSyscallError("read", rerr)
		}
		if err != nil {
			if bufp != nil {
				relay.PutDatagramBuffer(bufp)
			}
			return err
		}
		handle((*bufp)[:n])
		relay.PutDatagramBuffer(bufp)
	}
}
