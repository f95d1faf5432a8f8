//go:build unix && !linux

package relay

// echoOn is Linux's alone, where TCP_INQ can tell an empty queue from a
// FIN (echo_linux.go): elsewhere an echo reads until EAGAIN, as any copy.
func (r *idleReader) echoOn(*flow) bool { return false }

func (r *idleReader) echoFill(uintptr) bool { return true }
