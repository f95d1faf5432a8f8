package proxy

import (
	"fmt"
	"net"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// send_proxy_protocol values.
const (
	SendV1 = "v1"
	SendV2 = "v2"
)

var sendVersions = []string{SendV1, SendV2}

// v1Unknown is what a v1 header says when the client is not on TCP: the
// v1 format has no Unix family.
var v1Unknown = []byte("PROXY UNKNOWN\r\n")

// writeProxyHeader tells the upstream who the client is, before any of
// the client's bytes: c.RemoteAddr is the client's address, taken from an
// accepted PROXY header when a proxy_protocol handler read one, and
// c.LocalAddr the address it connected to. A Unix client gets a v2 UNIX
// header (a v1 UNKNOWN one); when the two ends are of no family the
// header can carry, v2 says LOCAL and v1 UNKNOWN, so the upstream uses
// the connection's own addresses.
func (h *Handler) writeProxyHeader(up net.Conn, c *chain.Conn, deadline time.Time) error {
	var b []byte
	hd := proxyproto.HeaderProxyFromAddrs(h.sendVersion, c.RemoteAddr(), c.LocalAddr())
	if h.sendVersion == 1 && !hd.TransportProtocol.IsIPv4() && !hd.TransportProtocol.IsIPv6() {
		b = v1Unknown
	} else {
		var err error
		if b, err = hd.Format(); err != nil {
			return fmt.Errorf("formatting the PROXY header: %w", err)
		}
	}
	// The upstream just accepted, so the write fits in its socket buffer;
	// the deadline (the connect attempt's) only guards against a peer
	// that never reads.
	if err := up.SetWriteDeadline(deadline); err != nil {
		return err
	}
	if _, err := up.Write(b); err != nil {
		return fmt.Errorf("writing the PROXY header: %w", err)
	}
	return up.SetWriteDeadline(time.Time{})
}
