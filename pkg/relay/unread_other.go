//go:build !linux

package relay

import "net"

// Elsewhere the idle timeout does not look at the receive queues: see
// unread_linux.go.
func connUnread(net.Conn) bool { return false }

func connWritable(net.Conn) bool { return false }
