package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/fdbudget"
)

// session is a UDP flow's upstream side: a connected socket of its own,
// so that the upstream's replies (and ICMP errors) come back on a socket
// that belongs to exactly one client address. A session without conn
// stands for one being opened by openLater.
type session struct {
	conn *net.UDPConn
	up   *upstream
}

// packetResolver resolves upstream host names for UDP flows; nil is the
// system's. Tests set one that never answers.
var packetResolver *net.Resolver

// sessionKey is the key of a flow's session: one per handler, so that
// two proxies in different generations never share one.
type sessionKey struct{ h *Handler }

var errClosed = errors.New("proxy: handler closed")

// ServePacket forwards the datagram on the flow's upstream socket,
// opening one on the flow's first datagram. A failed send ends the flow,
// with the upstream marked down: the client's next datagram starts a new
// flow on another upstream.
func (h *Handler) ServePacket(ctx context.Context, p *chain.Packet) error {
	s, _ := p.Flow.Value(sessionKey{h}).(*session)
	if s == nil {
		if h.named {
			return h.openLater(ctx, p)
		}
		var err error
		if s, err = h.open(ctx, p.Flow); err != nil {
			return err
		}
	}
	if s.conn == nil {
		// Its socket is still being opened: the datagram is lost, as
		// UDP allows.
		return nil
	}
	return h.send(s, p.Data)
}

// send writes one datagram on the flow's upstream socket.
func (h *Handler) send(s *session, b []byte) error {
	if _, err := s.conn.Write(b); err != nil {
		if !errors.Is(err, net.ErrClosed) {
			// Closed means the flow just ended (its relay saw the
			// upstream fail and said so); anything else is news.
			h.pool.failed(s.up, err)
		}
		return fmt.Errorf("proxy: sending to %s: %w", s.up.url, err)
	}
	return nil
}

// openLater opens the flow's socket on a goroutine of its own and sends
// the first datagram on it once open. Looking up a host name may take up
// to connect_timeout (a DNS server that does not answer), and the
// listener's read loop, which serves every flow of the listener, must not
// wait that long: the flow's later datagrams are dropped until its socket
// is open.
func (h *Handler) openLater(ctx context.Context, p *chain.Packet) error {
	f := p.Flow
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return errClosed
	}
	h.relays.Add(1)
	h.mu.Unlock()
	f.SetValue(sessionKey{h}, &session{})
	first := bytes.Clone(p.Data) // p.Data is the read loop's buffer
	go func() {
		s, err := h.open(ctx, f)
		if err == nil {
			err = h.send(s, first)
		}
		// Done before Close, as in relay: ending the flow may close the
		// generation, whose handler Close waits for this goroutine.
		h.relays.Done()
		if err != nil {
			f.Close(err)
		}
	}()
	return nil
}

// open connects the flow's upstream socket and starts the relay that
// carries replies back. Both end with the flow: its end closes the socket,
// which ends the relay.
func (h *Handler) open(ctx context.Context, f *chain.Flow) (*session, error) {
	// The flow's socket counts against the process-wide UDP budget: a
	// flood of new source addresses must not take the descriptors TCP
	// listeners and the admin endpoint need. Going over it is sluice's
	// own shortage, not the upstream's fault.
	budget := fdbudget.Default()
	if err := budget.TakeUDP(); err != nil {
		return nil, fmt.Errorf("proxy: no socket for a new flow (UDP descriptor budget %d): %w", budget.UDPBudget(), err)
	}
	var buf [maxTries]*upstream
	d := net.Dialer{Timeout: h.ConnectTimeout, Resolver: packetResolver}
	var nerr *noUpstreamError
	for _, u := range h.pool.order(buf[:0]) {
		// Connecting a UDP socket sends nothing; it fails only when the
		// name does not resolve or there is no route.
		c, err := d.DialContext(ctx, u.network, u.address)
		if err != nil {
			if ctx.Err() != nil || fdbudget.IsShortage(err) {
				// The listener is going away, or sluice is out of
				// descriptors: neither says anything about u.
				budget.ReleaseUDP()
				return nil, fmt.Errorf("proxy: connecting to %s: %w", u.url, err)
			}
			h.pool.failed(u, err)
			if nerr == nil {
				nerr = &noUpstreamError{}
			}
			nerr.tried = append(nerr.tried, u.url)
			nerr.errs = append(nerr.errs, fmt.Errorf("%s: %w", u.url, err))
			continue
		}
		s := &session{conn: c.(*net.UDPConn), up: u}
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			_ = c.Close()
			budget.ReleaseUDP()
			return nil, errClosed
		}
		h.relays.Add(1)
		h.mu.Unlock()
		u.opened()
		f.SetValue(sessionKey{h}, s)
		f.OnEnd(func(*chain.Flow) {
			_ = s.conn.Close()
			budget.ReleaseUDP()
			u.closed()
		})
		go h.relay(s, f)
		return s, nil
	}
	budget.ReleaseUDP()
	if nerr == nil {
		return nil, fmt.Errorf("proxy: %w", ErrNoUpstream)
	}
	return nil, fmt.Errorf("proxy: %w", nerr)
}

// relay sends the upstream's replies to the client until the flow ends
// (its socket closed: a quiet exit) or the upstream reports an error,
// such as the ICMP port unreachable that surfaces as ECONNREFUSED on a
// connected socket; then the upstream is marked down and the flow ended.
func (h *Handler) relay(s *session, f *chain.Flow) {
	// Replies run the flow's OnReply hooks (a middleware's code) in this
	// goroutine; a panic there ends this flow, never the process.
	released := false
	defer func() {
		if v := recover(); v != nil {
			f.Logger().Error("proxy relay panicked; flow ended", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if !released {
				h.relays.Done()
			}
			f.Close(fmt.Errorf("proxy: relay panicked: %v", v))
		}
	}()
	// recvLoop only returns with an error: net.ErrClosed when the flow
	// ended and closed the socket.
	err := recvLoop(s.conn, func(b []byte) {
		// A failed reply (the client's network) is not the
		// upstream's fault; the datagram is lost, as UDP allows.
		_, _ = f.Reply(b)
	})
	// Done before Close: ending the flow may close the generation, whose
	// handler Close waits for this very goroutine.
	h.relays.Done()
	released = true
	if !errors.Is(err, net.ErrClosed) {
		h.pool.failed(s.up, err)
		f.Close(fmt.Errorf("proxy: receiving from %s: %w", s.up.url, err))
	}
}
