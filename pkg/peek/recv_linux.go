package peek

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// recv is recvfrom(2) without the sender's address, which a connected
// socket does not give: unix.Recvfrom allocates room for one on every
// call, a look per connection.
func recv(fd int, p []byte) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
