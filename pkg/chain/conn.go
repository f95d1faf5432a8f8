package chain

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// ErrIdleTimeout is returned by handlers that closed a connection because
// nothing moved in either direction for the listener's idle_timeout.
var ErrIdleTimeout = errors.New("idle timeout")

// Conn is one accepted stream connection on its way through a chain.
//
// The embedded net.Conn is what handlers read and write. A middleware that
// needs to see or shape the bytes replaces it with a wrapper; when nobody
// did, it is the accepted socket itself (a *net.TCPConn or *net.UnixConn),
// so a terminal handler can hand it to io.Copy and let the kernel splice.
//
// Byte counts are kept by the terminal handler's copy loop (AddIn/AddOut),
// not by a wrapper around every Read, for the same reason.
type Conn struct {
	net.Conn

	raw         net.Conn
	local       net.Addr // see SetLocalAddr; nil: raw's own
	remote      net.Addr // see SetRemoteAddr; nil: the embedded Conn's own
	id          uint64
	listener    string
	start       time.Time
	idleTimeout time.Duration

	bytesIn  atomic.Int64
	bytesOut atomic.Int64

	// notes are key/value pairs handlers recorded for the access log
	// (see Annotate); wantNotes says a middleware will read them.
	notes     []any
	wantNotes bool

	baseLog hclog.Logger
	// goFn starts the goroutines a handler runs for the connection (see
	// Go); nil: plain go statements.
	goFn func(func())
	// log is derived from baseLog when first asked for; SetRemoteAddr
	// drops it so that the next one names the new address.
	log atomic.Pointer[hclog.Logger]
}

// NewConn wraps an accepted socket. base is the listener's logger; the
// connection's own logger is derived from it only when first asked for,
// so that a quiet connection costs no logger allocation.
func NewConn(raw net.Conn, id uint64, listener string, idle time.Duration, base hclog.Logger) *Conn {
	c := new(Conn)
	c.Init(raw, id, listener, idle, base)
	return c
}

// Init sets up a Conn in place, as NewConn does. It lets the supervisor
// keep a Conn inside its own per-connection record, so that accepting a
// connection costs one allocation, not two. Call it before the Conn is
// used, never after.
func (c *Conn) Init(raw net.Conn, id uint64, listener string, idle time.Duration, base hclog.Logger) {
	c.Conn = raw
	c.raw = raw
	c.local = nil
	c.remote = nil
	c.log.Store(nil)
	c.id = id
	c.listener = listener
	c.start = time.Now()
	c.idleTimeout = idle
	c.baseLog = base
	c.notes = c.notes[:0]
	c.wantNotes = false
	c.goFn = nil
}

// SetGo names who runs the goroutines a handler starts for the connection
// (see Go). Call it right after Init.
func (c *Conn) SetGo(goFn func(func())) { c.goFn = goFn }

// Go runs f on a goroutine of its own, as a go statement does, for a
// handler that needs a second one for the connection (the relay's second
// direction). Under the supervisor it is one that served earlier work,
// whose stack has grown already. Like any goroutine, f must recover its
// own panics.
func (c *Conn) Go(f func()) {
	if c.goFn != nil {
		c.goFn(f)
		return
	}
	go f()
}

// SetLocalAddr names the address the connection was accepted on when the
// socket's own name is not the configured one: a Unix socket is bound
// under a temporary name and renamed onto its path, and the kernel keeps
// reporting the name it was bound under. Call it right after Init.
func (c *Conn) SetLocalAddr(a net.Addr) { c.local = a }

// LocalAddr is the address the connection was accepted on (see
// SetLocalAddr).
func (c *Conn) LocalAddr() net.Addr {
	if c.local != nil {
		return c.local
	}
	return c.Conn.LocalAddr()
}

// SetRemoteAddr names the client when it is not the socket's peer: a
// proxy_protocol middleware read the client's address from a PROXY header
// sent by the load balancer that is the peer. Later handlers (ratelimit's
// per_ip, the proxy's send_proxy_protocol) and the connection's log lines
// see it. Call it from the chain's goroutine, before the handlers that
// must see it run.
func (c *Conn) SetRemoteAddr(a net.Addr) {
	c.remote = a
	c.log.Store(nil)
}

// RemoteAddr is the client's address (see SetRemoteAddr).
func (c *Conn) RemoteAddr() net.Addr {
	if c.remote != nil {
		return c.remote
	}
	return c.Conn.RemoteAddr()
}

// Annotate records what a handler learned about the connection that an
// operator wants on its access log line: the route it took, the TLS
// server name and version. The log middleware adds every annotation, in
// the order made, to the line it writes when the connection closes, so a
// handler deeper in the chain can tell it what it saw. Call it from the
// chain's goroutine; a key annotated twice keeps the later value.
func (c *Conn) Annotate(key string, value any) {
	for i := 0; i < len(c.notes); i += 2 {
		if c.notes[i] == key {
			c.notes[i+1] = value
			return
		}
	}
	c.notes = append(c.notes, key, value)
}

// Annotations returns the key/value pairs recorded by Annotate, in the
// order made. The slice is the Conn's own: read it, do not keep it.
func (c *Conn) Annotations() []any { return c.notes }

// WantAnnotations is called by a middleware that will read Annotations
// (log), before the handlers after it run.
func (c *Conn) WantAnnotations() { c.wantNotes = true }

// Annotating reports whether a middleware will read the annotations: a
// handler that annotates on every connection may skip making them (the
// values it would format and box) when none will.
func (c *Conn) Annotating() bool { return c.wantNotes }

// An AnnotationReader is a handler that reads, or hands the connection to
// a chain that reads, its annotations: log; route when a chain of its
// own has one. A handler that annotates and then runs a chain of its own
// asks that chain's handlers, since Annotating cannot know yet.
type AnnotationReader interface {
	ReadsAnnotations() bool
}

// ReadsAnnotations reports whether any of handlers is an
// AnnotationReader that reads them.
func ReadsAnnotations(handlers []any) bool {
	for _, h := range handlers {
		if r, ok := h.(AnnotationReader); ok && r.ReadsAnnotations() {
			return true
		}
	}
	return false
}

// Raw returns the accepted socket, bypassing any middleware wrapper. Only
// the supervisor (to force-close) and metrics-free fast paths should use it.
func (c *Conn) Raw() net.Conn { return c.raw }

// Wrapped reports whether a middleware replaced the embedded net.Conn.
func (c *Conn) Wrapped() bool { return c.Conn != c.raw }

// ID is unique per process and appears in logs as conn_id.
func (c *Conn) ID() uint64 { return c.id }

// Listener is the name of the listener that accepted the connection.
func (c *Conn) Listener() string { return c.listener }

// Start is when the connection was accepted.
func (c *Conn) Start() time.Time { return c.start }

// IdleTimeout is the listener's idle_timeout; 0 means never.
func (c *Conn) IdleTimeout() time.Duration { return c.idleTimeout }

// AddIn counts n bytes read from the client.
func (c *Conn) AddIn(n int64) { c.bytesIn.Add(n) }

// AddOut counts n bytes written to the client.
func (c *Conn) AddOut(n int64) { c.bytesOut.Add(n) }

// BytesIn is the number of bytes read from the client so far.
func (c *Conn) BytesIn() int64 { return c.bytesIn.Load() }

// BytesOut is the number of bytes written to the client so far.
func (c *Conn) BytesOut() int64 { return c.bytesOut.Load() }

// Logger returns the connection's logger, with conn_id, remote and local set.
func (c *Conn) Logger() hclog.Logger {
	if l := c.log.Load(); l != nil {
		return *l
	}
	remote := c.remote
	if remote == nil {
		remote = c.raw.RemoteAddr()
	}
	l := c.baseLog.With("conn_id", c.id, "remote", addrString(remote), "local", addrString(c.rawLocal()))
	c.log.Store(&l)
	return l
}

func (c *Conn) rawLocal() net.Addr {
	if c.local != nil {
		return c.local
	}
	return c.raw.LocalAddr()
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	s := a.String()
	if s == "" || s == "@" {
		// An unbound Unix client has no name; say so rather than log "".
		return a.Network() + ":unnamed"
	}
	return s
}

// CloseWriter is implemented by connections that support half-close.
type CloseWriter interface {
	CloseWrite() error
}

// CloseWrite half-closes w when it can (TCP, Unix, and wrappers that
// forward it) and reports whether it did.
func CloseWrite(w any) bool {
	if cw, ok := w.(CloseWriter); ok {
		_ = cw.CloseWrite()
		return true
	}
	return false
}

// IsTimeout reports whether err is a deadline expiry.
func IsTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
