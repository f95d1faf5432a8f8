package supervisor

import (
	"github.com/sluice-dev/sluice/pkg/listener"
)

// Offer offers every listening socket to the process an upgrade starts,
// each under its listener's identity, so that the new process serves the
// very same sockets: nothing is closed and no connect is refused while
// both run. The sockets stay open and served here.
func (s *Supervisor) Offer(o *listener.Offer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return ErrClosed
	}
	for _, r := range s.runners {
		spec := specOf(r.gen.Load().cfg)
		var err error
		if u, ok := r.ln.(*udpSocket); ok {
			err = o.AddPacketConn(spec, u.pc)
		} else {
			err = o.AddListener(spec, r.ln)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
