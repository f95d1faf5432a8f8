package admin

import (
	"github.com/sluice-dev/sluice/pkg/listener"
)

// Offer offers the endpoint's socket to the process an upgrade starts
// (see supervisor.Offer): the new process serves the same address without
// a refused connect.
func (a *Admin) Offer(o *listener.Offer) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur == nil {
		return nil
	}
	ln := a.cur.ln.Listener
	if l, ok := ln.(*limitListener); ok {
		ln = l.Listener // the socket itself; the cap is this process's
	}
	return o.AddListener(listener.Spec{Network: "tcp", Address: a.cur.addr}, ln)
}
