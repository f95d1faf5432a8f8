//go:build unix && !linux

package peek

import "golang.org/x/sys/unix"

// recv is recvfrom(2) without the sender's address (see the Linux one).
func recv(fd int, p []byte, flags int) (int, error) {
	n, _, err := unix.Recvfrom(fd, p, flags)
	return n, err
}
