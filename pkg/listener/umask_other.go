//go:build !unix

package listener

// DefaultUnixMode is a Unix socket file's mode when socket.mode is not
// set; there is no umask to subtract here.
func DefaultUnixMode() uint32 { return 0o666 }
