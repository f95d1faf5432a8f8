package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/listener"
	"github.com/sluice-dev/sluice/pkg/reload"
)

// ErrClosed is returned by Prepare after Close.
var ErrClosed = errors.New("admin endpoint is closed")

// Prepare is the Stage half of a reload that runs before the supervisor
// applies cfg. A new admin.address is bound here, so that an address in
// use fails the whole reload while the running endpoint, and every
// listener, stay as they are. An unchanged address keeps the running
// server and its socket: a scraper never sees a refused connect.
func (a *Admin) Prepare(ctx context.Context, cfg *config.Config) (reload.Pending, error) {
	addr := cfg.Admin.Address
	a.mu.Lock()
	closed, cur := a.closed, a.cur
	a.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if (cur == nil && addr == "") || (cur != nil && cur.addr == addr) {
		return noChange{}, nil
	}
	p := &pending{a: a}
	if addr == "" {
		return p, nil // Commit turns the endpoint off
	}
	ln, err := listener.ListenStream(ctx, listener.Spec{Network: "tcp", Address: addr})
	if err != nil {
		return nil, fmt.Errorf("admin.address: %w", err)
	}
	p.next = a.newServer(addr, ln)
	return p, nil
}

// noChange is the Pending of a reload that leaves the endpoint alone.
type noChange struct{}

func (noChange) Commit() {}
func (noChange) Abort()  {}

// pending moves the endpoint to next, or turns it off when next is nil.
type pending struct {
	a    *Admin
	next *server
}

// Commit serves on the new socket, then retires the old server without
// waiting for it (see retire). It cannot fail: everything that could was
// done in Prepare.
func (p *pending) Commit() {
	a := p.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		// Close ran between Prepare and Commit: nothing may start now.
		if p.next != nil {
			_ = p.next.ln.Close()
		}
		return
	}
	old := a.cur
	a.cur = p.next
	if p.next != nil {
		a.serve(p.next)
	}
	if old != nil {
		a.retire(old)
	}
}

// Abort closes the socket Prepare bound; the running endpoint is untouched.
func (p *pending) Abort() {
	if p.next != nil {
		_ = p.next.ln.Close()
	}
}
