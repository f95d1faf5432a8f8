//go:build !linux

package chain

import (
	"errors"
	"net"
)

// ErrNoPipe is returned by Splicer.Move when no pipe could be made.
var ErrNoPipe = errors.New("splice: no pipe")

// Splicer moves bytes between sockets with splice(2), which only Linux
// has: elsewhere NewSplicer always reports false.
type Splicer struct{}

// NewSplicer reports false: no splice here.
func NewSplicer(dst, src net.Conn) (*Splicer, bool) { return nil, false }

// Move is never called: NewSplicer makes no Splicer.
func (s *Splicer) Move() (int, error) { return 0, ErrNoPipe }

// Release does nothing.
func (s *Splicer) Release() {}
