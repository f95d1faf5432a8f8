package chain

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
)

// DefaultFlowIdleTimeout is how long a UDP flow lives without a datagram
// in either direction when its listener's idle_timeout is 0: UDP has no
// close, so "never" would keep every peer ever seen.
const DefaultFlowIdleTimeout = 60 * time.Second

// Flow is one client address on a UDP listener, from its first datagram
// until it ends: it went quiet for its idle timeout, a handler ended it
// (a returned error or Close), or its listener or chain generation went
// away. It is the datagram counterpart of Conn.
//
// Handlers keep per-flow state with SetValue/Value (an upstream socket,
// a first-seen time) and learn of the end through OnEnd, which is where
// that state is released and where a per-flow log record is written.
type Flow struct {
	id          uint64
	listener    string
	remote      netip.AddrPort
	local       net.Addr
	start       time.Time
	idleTimeout time.Duration
	reply       func([]byte, netip.AddrPort) (int, error)
	release     func(*Flow)

	bytesIn    atomic.Int64
	bytesOut   atomic.Int64
	packetsIn  atomic.Int64 // flow_observe.go
	packetsOut atomic.Int64
	// replyHooks are the OnReply functions, copied on write so that
	// Reply reads them without a lock.
	replyHooks atomic.Pointer[[]func([]byte)]
	// last is the time of the last datagram either way, in nanoseconds
	// since start (monotonic, so a wall clock step cannot expire a flow).
	last atomic.Int64

	mu     sync.Mutex
	values []flowValue
	onEnd  []func(*Flow)
	err    error
	ended  atomic.Bool
	done   chan struct{}

	baseLog hclog.Logger
	logOnce sync.Once
	log     hclog.Logger
}

type flowValue struct{ key, val any }

// FlowConfig is what the UDP listener knows about a new flow.
type FlowConfig struct {
	ID          uint64 // unique per process; conn_id in logs
	Listener    string
	Remote      netip.AddrPort
	Local       net.Addr
	IdleTimeout time.Duration
	// Logger is the listener's logger; the flow's own is derived lazily.
	Logger hclog.Logger
	// Reply sends a datagram from the listener's socket.
	Reply func(b []byte, to netip.AddrPort) (int, error)
	// Release runs once, after the handlers' OnEnd functions, so that the
	// listener forgets the flow with its counts final.
	Release func(*Flow)
}

// NewFlow starts a flow. The supervisor calls it for the first datagram
// from a client address (pkg/supervisor/udp.go); handlers never do.
func NewFlow(cfg FlowConfig) *Flow {
	return &Flow{
		id:          cfg.ID,
		listener:    cfg.Listener,
		remote:      cfg.Remote,
		local:       cfg.Local,
		start:       time.Now(),
		idleTimeout: cfg.IdleTimeout,
		reply:       cfg.Reply,
		release:     cfg.Release,
		done:        make(chan struct{}),
		baseLog:     cfg.Logger,
	}
}

// ID is unique per process (shared with stream connections) and appears
// in logs as conn_id.
func (f *Flow) ID() uint64 { return f.id }

// Listener is the name of the listener the flow arrived on.
func (f *Flow) Listener() string { return f.listener }

// Remote is the client's address.
func (f *Flow) Remote() netip.AddrPort { return f.remote }

// RemoteAddr is the client's address as a net.Addr, for code shared with
// stream connections.
func (f *Flow) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(f.remote) }

// LocalAddr is the listener's address.
func (f *Flow) LocalAddr() net.Addr { return f.local }

// Start is when the flow's first datagram arrived.
func (f *Flow) Start() time.Time { return f.start }

// IdleTimeout is how long the flow may stay quiet before it ends (the
// listener's idle_timeout, or DefaultFlowIdleTimeout).
func (f *Flow) IdleTimeout() time.Duration { return f.idleTimeout }

// Reply sends b to the client from the listener's socket, counting it
// in bytes_out. It is safe to call from any goroutine, until and during
// the flow's OnEnd functions.
func (f *Flow) Reply(b []byte) (int, error) {
	n, err := f.reply(b, f.remote)
	if n > 0 {
		f.AddOut(int64(n))
	}
	if err == nil {
		f.sent(b)
	}
	return n, err
}

// AddIn counts a datagram of n bytes from the client and marks the flow
// active. The listener calls it once for every datagram it reads.
func (f *Flow) AddIn(n int64) {
	f.bytesIn.Add(n)
	f.packetsIn.Add(1)
	f.Touch()
}

// AddOut counts n bytes sent to the client and marks the flow active.
func (f *Flow) AddOut(n int64) {
	f.bytesOut.Add(n)
	f.Touch()
}

// BytesIn is the number of bytes received from the client so far.
func (f *Flow) BytesIn() int64 { return f.bytesIn.Load() }

// BytesOut is the number of bytes sent to the client so far.
func (f *Flow) BytesOut() int64 { return f.bytesOut.Load() }

// Touch marks the flow active now, postponing its idle expiry.
func (f *Flow) Touch() { f.last.Store(int64(time.Since(f.start))) }

// IdleFor is how long the flow has been quiet.
func (f *Flow) IdleFor() time.Duration {
	return time.Since(f.start) - time.Duration(f.last.Load())
}

// Value returns the state stored under key, or nil. Keys are compared
// with ==; a handler uses a key of its own (itself, or a value of an
// unexported type), as with context.Context.
func (f *Flow) Value(key any) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range f.values {
		if v.key == key {
			return v.val
		}
	}
	return nil
}

// SetValue stores val under key, replacing what was there.
func (f *Flow) SetValue(key, val any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.values {
		if f.values[i].key == key {
			f.values[i].val = val
			return
		}
	}
	f.values = append(f.values, flowValue{key, val})
}

// OnEnd registers fn to run once when the flow ends. Functions run in
// reverse order of registration, like defers, so that an outer
// middleware's record (log) sees what inner handlers did when they let
// go (proxy closing its upstream socket). fn sees the final counts and
// Err. Registered after the end, fn runs at once.
func (f *Flow) OnEnd(fn func(*Flow)) {
	f.mu.Lock()
	if !f.ended.Load() {
		f.onEnd = append(f.onEnd, fn)
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	fn(f)
}

// Close ends the flow with err (nil: a normal end). The first call wins;
// later ones, and calls from inside OnEnd functions, do nothing. When the
// first call returns, the OnEnd functions have run.
func (f *Flow) Close(err error) {
	f.mu.Lock()
	if f.ended.Load() {
		f.mu.Unlock()
		return
	}
	f.ended.Store(true)
	f.err = err
	fns := f.onEnd
	f.onEnd = nil
	f.mu.Unlock()

	for i := len(fns) - 1; i >= 0; i-- {
		fns[i](f)
	}
	if f.release != nil {
		f.release(f)
	}
	close(f.done)
}

// Ended reports whether the flow has ended (its OnEnd functions may
// still be running).
func (f *Flow) Ended() bool { return f.ended.Load() }

// Done is closed once the flow has ended and its OnEnd functions ran.
func (f *Flow) Done() <-chan struct{} { return f.done }

// Err is the error the flow ended with: nil while it runs, when it went
// quiet for its idle timeout, or when its listener stopped.
func (f *Flow) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Logger returns the flow's logger, with conn_id, remote and local set.
func (f *Flow) Logger() hclog.Logger {
	f.logOnce.Do(func() {
		f.log = f.baseLog.With("conn_id", f.id, "remote", f.remote.String(), "local", addrString(f.local))
	})
	return f.log
}
