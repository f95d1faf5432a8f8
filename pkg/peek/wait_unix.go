//go:build unix

package peek

import (
	"net"
	"time"
)

// lateDeadline is the deadline of a wait in RawConn.Read that is armed
// only once a callback found nothing, from within that call: leaving it
// to arm the deadline outside would make the next call receive again
// first, for nothing as a rule, since the runtime forgets a readiness it
// saw before the call (one EAGAIN more per connection whose first bytes
// were not there yet at its first look). The first looks never wait, so
// when the bytes that decide are there already (a client's first segment
// often is), no deadline timer is armed at all.
type lateDeadline struct {
	conn     net.Conn
	deadline time.Time
	armed    bool
}

// arm sets the deadline before the callback parks, once.
func (d *lateDeadline) arm() error {
	if d.armed {
		return nil
	}
	if err := d.conn.SetReadDeadline(d.deadline); err != nil {
		return err
	}
	d.armed = true
	return nil
}

// clear lifts the deadline after the wait, when it was armed, so that the
// next reader of the connection does not inherit it.
func (d *lateDeadline) clear() {
	if d.armed {
		_ = d.conn.SetReadDeadline(time.Time{})
	}
}
