package proxy_test

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// dataSegsIn is how many segments with data c's socket has received
// (TCP_INFO), where the kernel says.
func dataSegsIn(c net.Conn) (uint32, bool) {
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return 0, false
	}
	var info *unix.TCPInfo
	_ = rc.Control(func(fd uintptr) { info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if err != nil || info == nil {
		return 0, false
	}
	return info.Data_segs_in, true
}
