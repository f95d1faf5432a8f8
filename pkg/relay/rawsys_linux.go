package relay

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The loop's system calls on its non-blocking sockets, pipes and epoll
// instance go through RawSyscall: none of them can block, and the usual
// Syscall's entersyscall/exitsyscall is what keeps Go's sysmon waking
// every 20 µs to take the loop's P away from a "slow" call (a loopback
// write that runs the receiver's TCP stack), waking another thread for
// it: context switches that cost more than the calls themselves.

//
// recvfrom and sendto rather than read and write: they skip the file
// layer, and MSG_NOSIGNAL turns a write to a closed peer into EPIPE
// without a SIGPIPE for the runtime to field.

func rawRead(fd int, p []byte) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_DONTWAIT, 0, 0)
	return rawResult(r, e)
}

// sockRead is idleReader's read of its socket, raw for the same reason:
// the descriptor is non-blocking, so the call cannot park the thread, and
// entersyscall/exitsyscall cost more than the copy of a small message.
func sockRead(fd int, p []byte) (int, error) { return rawRead(fd, p) }

// sockWrite is WriteNow's write, raw as well: a loopback write runs the
// receiver's TCP stack within the call.
func sockWrite(fd int, p []byte) (int, error) { return rawWrite(fd, p) }

func rawWrite(fd int, p []byte) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, 0, 0)
	return rawResult(r, e)
}

func rawSplice(in, out, n int) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n), spliceFlags)
	return rawResult(r, e)
}

// rawShutdown half-closes fd (see closeWrite).
func rawShutdown(fd int) {
	unix.RawSyscall(unix.SYS_SHUTDOWN, uintptr(fd), unix.SHUT_WR, 0)
}

// rawEpollPoll returns the events ready now, without waiting.
func rawEpollPoll(epfd int, events []unix.EpollEvent) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	return rawResult(r, e)
}

func rawResult(r uintptr, e syscall.Errno) (int, error) {
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
