//go:build !linux

package relay

import (
	"errors"
	"net"
)

var errNoPipe = errors.New("splice: no pipe")

// splicer moves bytes between sockets with splice(2), which only Linux
// has: elsewhere newSplicer always reports false.
type splicer struct{ dog *watchdog }

func newSplicer(dst, src net.Conn) (*splicer, bool) { return nil, false }

func (s *splicer) move() (int, error) { return 0, errNoPipe }
func (s *splicer) release()           {}
func (s *splicer) drained() bool      { return true }
func (s *splicer) flush() error       { return nil }
