//go:build !linux

package proxy

import "syscall"

// startConnect is nil where net's own connect is the only one (see the
// Linux version).
var startConnect func(network, address string, c syscall.RawConn) error
