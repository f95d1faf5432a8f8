//go:build !unix

package relay

import "net"

// idleReader waits for readability through syscall.RawConn, which only
// Unix systems offer in the form it needs: elsewhere every copy takes the
// plain loop.
type idleReader struct {
	dog   *watchdog
	pass  bool
	dueAt int64
}

func newIdleReader(net.Conn) (*idleReader, bool) { return nil, false }

func (r *idleReader) read() ([]byte, error) { return nil, errNoPipe }
func (r *idleReader) release()              {}
func (r *idleReader) close()                {}
func (r *idleReader) passOn(*flow) bool     { return false }
