package proxy

import "net"

// SetPacketResolver makes UDP flows look host names up with r until the
// returned function restores the system's resolver.
func SetPacketResolver(r *net.Resolver) (restore func()) {
	old := packetResolver
	packetResolver = r
	return func() { packetResolver = old }
}
