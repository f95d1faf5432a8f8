package listener

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/relay"
)

// ReadPackets runs pc's read loop until pc is closed, handing each
// datagram to handle, which runs on the loop's goroutine: b is only valid
// during the call. It returns nil when pc was closed. Other read errors
// (ICMP errors surfacing on the socket, ENOBUFS) are retried with the same
// backoff as accept errors, so a failing socket slows the loop down
// instead of spinning it.
func ReadPackets(pc *net.UDPConn, log hclog.Logger, handle func(b []byte, from netip.AddrPort)) error {
	bufp := relay.GetDatagramBuffer()
	defer relay.PutDatagramBuffer(bufp)
	buf := *bufp
	var delay time.Duration
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			delay = nextBackoff(delay)
			log.Warn("read failed; retrying", "error", err, "backoff", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		// An IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d;
		// unmapping gives it one identity and the address operators know.
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		handle(buf[:n], from)
	}
}
