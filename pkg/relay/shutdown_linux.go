package relay

import (
	"net"
	"syscall"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// closeWrite half-closes c, as chain.CloseWrite does, but on a socket it
// calls shutdown(2) by RawSyscall: the call sends the FIN and, on
// loopback, delivers it and wakes the peer before it returns, which can
// outlast the Go runtime monitor's 20 µs tick; through syscall.Syscall
// the runtime would then hand the processor to another thread for the
// rest of the call.
func closeWrite(c net.Conn) bool {
	if !isSocket(c) {
		return chain.CloseWrite(c)
	}
	rc, err := c.(syscall.Conn).SyscallConn() // a socket is one
	if err != nil {
		return chain.CloseWrite(c)
	}
	_ = rc.Control(func(fd uintptr) { rawShutdown(int(fd)) })
	return true
}
