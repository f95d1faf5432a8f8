// Package listener opens the sockets sluice serves on and runs accept
// loops that survive transient errors. It knows nothing of chains.
package listener

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
)

// Spec says what to bind.
type Spec struct {
	// Name is the listener's name: a socket systemd passed under this
	// name (see InheritSystemd) is served instead of binding one.
	Name    string
	Network string // tcp, tcp4, tcp6, unix, udp, udp4, udp6
	Address string
	// Mode is the Unix socket file's permission bits; 0 keeps the
	// default (0666 minus umask).
	Mode uint32
}

// MaxUnixPath is the longest Unix socket path the kernel accepts: sun_path
// is 108 bytes, the terminating NUL included. Listeners, their temporary
// bind names and Unix upstreams are all held to it.
const MaxUnixPath = 107

// ErrReplaced means the socket file at a listener's path is no longer the
// one sluice bound (a symlink or another file was put in its place), so
// sluice leaves it alone.
var ErrReplaced = errors.New("the path no longer holds the socket sluice bound; leaving it alone")

// ErrInUse means another process (or another listener) already serves on
// the address.
var ErrInUse = errors.New("address already in use")

// ListenStream binds a TCP or Unix stream socket, or takes the one the
// previous process handed over on an upgrade (see UseHandover), or the
// one systemd passed under s.Name.
func ListenStream(ctx context.Context, s Spec) (net.Listener, error) {
	if ln, err := handedListener(s); ln != nil || err != nil {
		noteFromFile(ln)
		return ln, err
	}
	if ln, err := inheritedListener(s); ln != nil || err != nil {
		noteFromFile(ln)
		return ln, err
	}
	switch s.Network {
	case "tcp", "tcp4", "tcp6":
		// No keepalive from Go: the supervisor sets each connection's
		// (see GoKeepAlive).
		lc := net.ListenConfig{KeepAlive: -1}
		ln, err := lc.Listen(ctx, s.Network, s.Address)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("listen %s %s: %w", s.Network, s.Address, ErrInUse)
			}
			return nil, fmt.Errorf("listen %s %s: %w", s.Network, s.Address, err)
		}
		return ln, nil
	case "unix":
		return listenUnix(ctx, s)
	}
	return nil, fmt.Errorf("listen: network %q is not a stream network", s.Network)
}

// ListenPacket binds a UDP socket, or takes the one handed over on an
// upgrade, or the one systemd passed under s.Name.
func ListenPacket(ctx context.Context, s Spec) (net.PacketConn, error) {
	if pc, err := handedPacketConn(s); pc != nil || err != nil {
		return pc, err
	}
	if pc, err := inheritedPacketConn(s); pc != nil || err != nil {
		return pc, err
	}
	switch s.Network {
	case "udp", "udp4", "udp6":
		var lc net.ListenConfig
		pc, err := lc.ListenPacket(ctx, s.Network, s.Address)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return nil, fmt.Errorf("listen %s %s: %w", s.Network, s.Address, ErrInUse)
			}
			return nil, fmt.Errorf("listen %s %s: %w", s.Network, s.Address, err)
		}
		return pc, nil
	}
	return nil, fmt.Errorf("listen: network %q is not a datagram network", s.Network)
}
