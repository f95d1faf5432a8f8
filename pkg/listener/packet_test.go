package listener

import (
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// TestReadPackets: datagrams reach the handler with their sender (IPv4
// unmapped on a dual-stack socket), and closing the socket ends the loop
// with nil.
func TestReadPackets(t *testing.T) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6unspecified})
	if err != nil {
		t.Skipf("no dual-stack UDP socket here: %v", err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	type dgram struct {
		data string
		from netip.AddrPort
	}
	got := make(chan dgram, 4)
	done := make(chan error, 1)
	go func() {
		done <- ReadPackets(pc, hclog.NewNullLogger(), func(b []byte, from netip.AddrPort) {
			got <- dgram{string(b), from}
		})
	}()
	c, err := net.Dial("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-got:
		if d.data != "hi" || d.from.String() != c.LocalAddr().String() {
			t.Fatalf("got %q from %v, want \"hi\" from %v", d.data, d.from, c.LocalAddr())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no datagram")
	}
	_ = pc.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ReadPackets: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not end on close")
	}
}
