//go:build unix && !linux

package relay

import "syscall"

// passOn is Linux's alone, where TCP_INQ can tell an empty queue from a
// FIN (pass_linux.go): elsewhere a flow reads until EAGAIN.
func (r *idleReader) passOn(*flow) bool { return false }

func (r *idleReader) passFill(uintptr) bool { return true }

func (r *idleReader) writeOut(uintptr) bool { return true }

// sockRead is a non-blocking socket's read (see rawsys_linux.go).
func sockRead(fd int, p []byte) (int, error) { return syscall.Read(fd, p) }

// sockWrite is WriteNow's write.
func sockWrite(fd int, p []byte) (int, error) { return syscall.Write(fd, p) }
