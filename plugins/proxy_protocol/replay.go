package proxyprotocol

import (
	"errors"
	"net"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// replayConn hands the bytes read along with the header to the next
// reader before reading the socket again.
type replayConn struct {
	net.Conn
	buf []byte
}

func (r *replayConn) Read(p []byte) (int, error) {
	if len(r.buf) > 0 {
		n := copy(p, r.buf)
		r.buf = r.buf[n:]
		return n, nil
	}
	return r.Conn.Read(p)
}

// CloseWrite forwards the half-close to the socket.
func (r *replayConn) CloseWrite() error {
	if cw, ok := r.Conn.(chain.CloseWriter); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
