package listener

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cloudflare/tableflip"
)

// Sockets handed over by a binary upgrade (see cmd/sluice's upgrade): the
// old process offers every listening socket to the new one through
// tableflip, keyed by the listener's identity (its network and address,
// as config.Listener.BindKey), and the new process takes them by that
// identity before it would bind anything.
//
// Like the systemd sockets, this is process-wide state: the sockets are
// passed once, at exec.
var handover struct {
	mu  sync.Mutex
	fds *tableflip.Fds
}

// keepFiles is set once this process has handed its sockets over: from
// then on a Unix socket file is the new process's, and closing our
// listener must not unlink it.
var keepFiles atomic.Bool

// systemdUnix marks, in a handover key, a Unix socket that came from
// systemd socket activation: its file belongs to the .socket unit, so no
// process may unlink it, and tableflip (which unlinks "unix" sockets it
// closes unused) must not know it as one.
const systemdUnix = "unix+systemd"

// UseHandover makes fds, the sockets inherited from the process that
// started this one for an upgrade, the first place ListenStream and
// ListenPacket look. Sockets no listener claims are tableflip's to close
// once the process says it is ready.
func UseHandover(fds *tableflip.Fds) {
	handover.mu.Lock()
	defer handover.mu.Unlock()
	handover.fds = fds
}

// KeepSocketFiles stops every Unix listener of this process from removing
// its socket file on Close: the sockets now belong to the new process,
// which serves the same files.
func KeepSocketFiles() { keepFiles.Store(true) }

// handoverKey is the identity a socket is offered and taken under. A
// kernel-chosen port ("host:0") never names the same socket twice, so the
// name is part of it then, as in config.Listener.BindKey.
func handoverKey(s Spec) string {
	if _, port, err := net.SplitHostPort(s.Address); err == nil && port == "0" && s.Network != "unix" {
		return s.Address + " " + s.Name
	}
	return s.Address
}

// handedListener returns the listener handed over for s, or nil.
func handedListener(s Spec) (net.Listener, error) {
	handover.mu.Lock()
	fds := handover.fds
	handover.mu.Unlock()
	if fds == nil {
		return nil, nil
	}
	key := handoverKey(s)
	if s.Network == "unix" {
		// A systemd socket stays a plain listener: never unlinked.
		if ln, err := fds.Listener(systemdUnix, key); ln != nil && err == nil {
			return ln, nil
		}
	}
	// An error means a withdrawn placeholder (see Offer.Withdraw): the
	// socket is not there to take, so it is bound afresh.
	ln, err := fds.Listener(s.Network, key)
	if ln == nil || err != nil {
		return nil, nil
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		return adoptUnix(s, ul)
	}
	return ln, nil
}

// handedPacketConn returns the UDP socket handed over for s, or nil.
func handedPacketConn(s Spec) (net.PacketConn, error) {
	handover.mu.Lock()
	fds := handover.fds
	handover.mu.Unlock()
	if fds == nil {
		return nil, nil
	}
	pc, err := fds.PacketConn(s.Network, handoverKey(s))
	if pc == nil || err != nil {
		return nil, nil // as in handedListener
	}
	return pc, nil
}

// Offer collects the sockets offered to the next process for one upgrade
// attempt.
type Offer struct {
	fds  *tableflip.Fds
	keys [][2]string // kind ("listener", "packet"), network, key: see Withdraw
}

// NewOffer starts an offer on fds, the upgrader's.
func NewOffer(fds *tableflip.Fds) *Offer { return &Offer{fds: fds} }

// AddListener offers ln, which serves s. tableflip keeps a duplicate of
// the descriptor; ln stays ours.
func (o *Offer) AddListener(s Spec, ln net.Listener) error {
	network := s.Network
	var sc tableflip.Listener
	switch l := ln.(type) {
	case *unixListener:
		sc = l.UnixListener
	case *net.UnixListener:
		network = systemdUnix // only systemd's sockets are plain ones
		sc = l
	case tableflip.Listener:
		sc = l
	default:
		return fmt.Errorf("listen %s %s: %T cannot be handed over", s.Network, s.Address, ln)
	}
	key := handoverKey(s)
	if err := o.fds.AddListener(network, key, sc); err != nil {
		return fmt.Errorf("offering %s %s: %w", s.Network, s.Address, err)
	}
	o.keys = append(o.keys, [2]string{network, key})
	return nil
}

// AddPacketConn offers pc, which serves s.
func (o *Offer) AddPacketConn(s Spec, pc *net.UDPConn) error {
	key := handoverKey(s)
	if err := o.fds.AddPacketConn(s.Network, key, pc); err != nil {
		return fmt.Errorf("offering %s %s: %w", s.Network, s.Address, err)
	}
	o.keys = append(o.keys, [2]string{"packet:" + s.Network, key})
	return nil
}

// Withdraw takes back an offer after a failed upgrade. tableflip has no
// way to forget a socket, and the duplicate it holds would keep a socket
// that a later reload removes bound and listening: a client would hang in
// its backlog instead of being refused, and the address could not be
// bound again. So every offered key is overwritten with a placeholder
// (tableflip then drops its duplicate, which the garbage collector's
// finalizer closes) and a collection is run at once. The next attempt
// offers the sockets of that moment again.
func (o *Offer) Withdraw() {
	null, err := os.Open(os.DevNull)
	if err != nil {
		return
	}
	defer null.Close()
	p := placeholder{null}
	for _, k := range o.keys {
		if network, ok := strings.CutPrefix(k[0], "packet:"); ok {
			_ = o.fds.AddPacketConn(network, k[1], p)
			continue
		}
		_ = o.fds.AddListener(k[0], k[1], p)
	}
	o.keys = nil
	runtime.GC()
}

// placeholder stands in for a withdrawn socket: /dev/null, which a new
// process cannot take as a socket (it binds a fresh one then) and which
// holds no address.
type placeholder struct{ *os.File }

var errPlaceholder = fmt.Errorf("withdrawn socket: %w", syscall.ENOTSOCK)

func (placeholder) Accept() (net.Conn, error)              { return nil, errPlaceholder }
func (placeholder) Addr() net.Addr                         { return nil }
func (placeholder) LocalAddr() net.Addr                    { return nil }
func (placeholder) ReadFrom([]byte) (int, net.Addr, error) { return 0, nil, errPlaceholder }
func (placeholder) WriteTo([]byte, net.Addr) (int, error)  { return 0, errPlaceholder }
