package listener

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// DefaultKeepAlive is the TCP keepalive a connection gets when its
// listener or upstream says nothing (listeners[].tcp_keepalive, proxy's
// tcp_keepalive): the first probe after 15 s of silence, then one every
// 15 s, and the connection is dropped after 9 unanswered. These are Go's
// own defaults, which sluice had before the option existed.
const DefaultKeepAlive = 15 * time.Second

// MaxKeepAlive is the longest tcp_keepalive: Linux takes at most 32767
// seconds for the idle time and the interval between probes
// (MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL) and refuses more with EINVAL,
// which left a connection with the kernel's default of two hours.
const MaxKeepAlive = 32767 * time.Second

// CheckKeepAlive says what is wrong with d as a tcp_keepalive, a
// listener's or an upstream's, or "" when nothing is.
func CheckKeepAlive(d time.Duration) string {
	switch {
	case d < 0:
		return "must not be negative (0 turns keepalive off)"
	case d > 0 && d < time.Second:
		// The kernel counts keepalive in whole seconds.
		return "must be at least 1s, or 0 to turn keepalive off"
	case d > MaxKeepAlive:
		return fmt.Sprintf("%s is too long: the kernel takes at most %s (32767s)", d, MaxKeepAlive)
	}
	return ""
}

// keepAliveProbes is how many unanswered probes end a connection.
const keepAliveProbes = 9

// TCP keepalive on accepted connections is the supervisor's to set, per
// listener and per reload, so a TCP listener sluice binds itself asks Go
// for none: Go would otherwise make four setsockopt calls on every
// accepted connection, for a setting the config may then undo. A listener
// made from a descriptor (handed over on an upgrade, or passed by
// systemd) cannot be asked: Go sets its defaults on each connection it
// accepts. Those listeners are few, made at start, and recorded here.
var fromFile sync.Map // *net.TCPListener → struct{}

func noteFromFile(ln net.Listener) {
	if tl, ok := ln.(*net.TCPListener); ok {
		fromFile.Store(tl, struct{}{})
	}
}

// GoKeepAlive reports whether Go sets its default keepalive (that of
// DefaultKeepAlive) on the connections ln accepts.
func GoKeepAlive(ln net.Listener) bool {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return false
	}
	_, ok = fromFile.Load(tl)
	return ok
}

// KeepAliveConfig is the keepalive of a tcp_keepalive value: probes after
// d of silence, then every d; d = 0 turns keepalive off.
func KeepAliveConfig(d time.Duration) net.KeepAliveConfig {
	if d <= 0 {
		return net.KeepAliveConfig{Enable: false}
	}
	return net.KeepAliveConfig{Enable: true, Idle: d, Interval: d, Count: keepAliveProbes}
}

// SetKeepAlive gives c, accepted by a listener, that listener's
// tcp_keepalive d. goDefault says Go already set DefaultKeepAlive on c
// (see GoKeepAlive): then only a different d costs a system call.
func SetKeepAlive(c *net.TCPConn, d time.Duration, goDefault bool) error {
	switch {
	case goDefault && d == DefaultKeepAlive:
		return nil
	case d <= 0 && !goDefault:
		return nil // off, as accepted
	case d <= 0:
		return c.SetKeepAlive(false)
	}
	return c.SetKeepAliveConfig(KeepAliveConfig(d))
}
