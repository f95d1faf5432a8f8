//go:build unix && !linux

package peek

import "golang.org/x/sys/unix"

// recv is recvfrom(2) without the sender's address (see the Linux one).
func recv(fd int, p []byte) (int, error) {
	n, _, err := unix.Recvfrom(fd, p, 0)
	return n, err
}
