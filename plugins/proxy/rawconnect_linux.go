package proxy

import (
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// startConnect is the dialer's Control hook: it starts a TCP connect by
// RawSyscall on the new socket before net makes its own connect call.
//
// Why: connect(2) to a loopback or same-host upstream runs the whole
// handshake inside the call (SYN, SYN-ACK and ACK are delivered before
// it returns, the listener woken), which can outlast the Go runtime
// monitor's 20 µs tick. Made through syscall.Syscall, as net makes it,
// such a call has its processor taken and handed to another thread:
// thread wake-ups that cost about 6 % of a proxied connection's CPU
// (same-run A/B). Made raw, it runs to its end on its thread. net's own
// call then finds the connect done (0, or EISCONN, and it skips waiting
// for writability and SO_ERROR), still in progress (EALREADY: it waits as
// it would have), or failed (the error it reports): whatever the raw call
// returned is left for it to find, so errors and timeouts are net's as
// before. A remote upstream's connect returns EINPROGRESS at once either
// way.
func startConnect(network, address string, c syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || ap.Addr().Zone() != "" {
		return nil // net's call does it all (a zone needs its index)
	}
	switch network {
	case "tcp4":
		if !ap.Addr().Unmap().Is4() {
			return nil
		}
	case "tcp6":
	default:
		return nil
	}
	// The address, as connect(2) takes it, is made within the callback:
	// declared out here, where the callback refers to it, it would be
	// allocated on every connect.
	return c.Control(func(fd uintptr) {
		if network == "tcp4" {
			sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ap.Addr().Unmap().As4()}
			putPort((*[2]byte)(unsafe.Pointer(&sa.Port)), ap.Port())
			unix.RawSyscall(unix.SYS_CONNECT, fd, uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
			return
		}
		sa := unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ap.Addr().As16()}
		putPort((*[2]byte)(unsafe.Pointer(&sa.Port)), ap.Port())
		unix.RawSyscall(unix.SYS_CONNECT, fd, uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	})
}

// putPort writes port in network byte order.
func putPort(b *[2]byte, port uint16) { b[0], b[1] = byte(port>>8), byte(port) }
