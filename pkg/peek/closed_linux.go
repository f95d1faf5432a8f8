package peek

import "golang.org/x/sys/unix"

// peerClosed reports whether the peer of the socket fd has shut down its
// side (a FIN received), without waiting.
func peerClosed(fd int) bool {
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
	n, err := unix.Poll(p, 0)
	return err == nil && n > 0 && p[0].Revents&(unix.POLLRDHUP|unix.POLLHUP) != 0
}

// queued is how many bytes wait in the socket fd, told without copying
// them (SIOCINQ); false when the kernel does not say.
func queued(fd int) (int, bool) {
	n, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	return n, err == nil
}
