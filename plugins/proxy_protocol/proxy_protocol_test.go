package proxyprotocol_test

import (
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

var (
	client  = &net.TCPAddr{IP: net.ParseIP("203.0.113.7"), Port: 4242}
	balancr = &net.TCPAddr{IP: net.ParseIP("198.51.100.1"), Port: 443}
	client6 = &net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 4243}
	front6  = &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443}
)

func header(t *testing.T, version byte, src, dst net.Addr) []byte {
	t.Helper()
	b, err := proxyproto.HeaderProxyFromAddrs(version, src, dst).Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func localV2(t *testing.T) []byte {
	t.Helper()
	b, err := (&proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}).Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAccepted sends headers as a load balancer would, and some as it
// should not but may, and checks that the data after each reaches the
// next handler whole and that the access log names the header's client.
func TestAccepted(t *testing.T) {
	trusted := "        trusted: [127.0.0.1/32]\n"
	v1 := header(t, 1, client, balancr)
	v2 := header(t, 2, client, balancr)
	// A v2 header with a TLV (PP2_TYPE_AUTHORITY) the handler must skip.
	withTLV := proxyproto.HeaderProxyFromAddrs(2, client, balancr)
	if err := withTLV.SetTLVs([]proxyproto.TLV{{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: []byte("example.com")}}); err != nil {
		t.Fatal(err)
	}
	tlv, err := withTLV.Format()
	if err != nil {
		t.Fatal(err)
	}
	split := func(b []byte, at ...int) [][]byte {
		var out [][]byte
		prev := 0
		for _, i := range at {
			out = append(out, b[prev:i])
			prev = i
		}
		return append(out, b[prev:])
	}
	tests := []struct {
		name   string
		parts  [][]byte
		remote string // "": the peer's own
	}{
		{"v1, data in the same segment", [][]byte{append(slices.Clone(v1), "hello"...)}, "203.0.113.7:4242"},
		{"v2, data in the same segment", [][]byte{append(slices.Clone(v2), "hello"...)}, "203.0.113.7:4242"},
		{"v1 then data", [][]byte{v1, []byte("hello")}, "203.0.113.7:4242"},
		{"v1 split in three", append(split(v1, 1, 9), []byte("hello")), "203.0.113.7:4242"},
		{"v2 split in the signature and the length", append(split(v2, 3, 15), []byte("hello")), "203.0.113.7:4242"},
		{"v2 with a TLV", [][]byte{tlv, []byte("hello")}, "203.0.113.7:4242"},
		{"v2 IPv6", [][]byte{header(t, 2, client6, front6), []byte("hello")}, "[2001:db8::7]:4243"},
		{"v1 IPv6", [][]byte{header(t, 1, client6, front6), []byte("hello")}, "[2001:db8::7]:4243"},
		{"v2 LOCAL", [][]byte{localV2(t), []byte("hello")}, ""},
		{"v1 UNKNOWN", [][]byte{[]byte("PROXY UNKNOWN\r\nhello")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFront(t, "tcp", "127.0.0.1:0", trusted)
			c := dial(t, "tcp", f.Addr("pp"))
			writeAll(t, c, 20*time.Millisecond, tt.parts...)
			if got := echoed(t, c); got != "hello" {
				t.Fatalf("echoed %q, want %q", got, "hello")
			}
			want := tt.remote
			if want == "" {
				want = c.LocalAddr().String()
			}
			if got := f.remotes(); !slices.Equal(got, []string{want}) {
				t.Errorf("access log remote %q, want [%s]", got, want)
			}
			f.wantRejected("", 0)
		})
	}
}

// TestRejected checks each reason a connection is closed for, and that it
// is counted exactly once, under that reason only.
func TestRejected(t *testing.T) {
	v1 := header(t, 1, client, balancr)
	tests := []struct {
		name   string
		opts   string
		parts  [][]byte
		reason string
	}{
		{"untrusted v1", "        trusted: [10.0.0.0/8]\n", [][]byte{v1}, "untrusted"},
		{"untrusted v2", "        trusted: [10.0.0.0/8]\n", [][]byte{header(t, 2, client, balancr)}, "untrusted"},
		{"malformed v1", "        trusted: [127.0.0.1]\n", [][]byte{[]byte("PROXY TCP4 nonsense\r\nhello")}, "malformed"},
		{"malformed v1, too long", "        trusted: [127.0.0.1]\n", [][]byte{append([]byte("PROXY TCP4 "), make([]byte, 200)...)}, "malformed"},
		{"malformed v2 family", "        trusted: [127.0.0.1]\n", [][]byte{append(slices.Clone(proxyproto.SIGV2), 0x21, 0xF1, 0, 0)}, "malformed"},
		{"missing", "        trusted: [127.0.0.1]\n", [][]byte{[]byte("hello")}, "missing"},
		{"slower than timeout", "        trusted: [127.0.0.1]\n        timeout: 300ms\n", [][]byte{v1[:10]}, "timeout"},
		{"nothing within timeout", "        trusted: [127.0.0.1]\n        timeout: 300ms\n", nil, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFront(t, "tcp", "127.0.0.1:0", tt.opts)
			c := dial(t, "tcp", f.Addr("pp"))
			writeAll(t, c, 0, tt.parts...)
			closed(t, c)
			f.WaitIdle("pp")
			f.wantRejected(tt.reason, 1)
		})
	}
}

// TestNotRequired: without a header, a trusted peer passes with its own
// address at once, not after the timeout, even when its first byte is
// the first of a signature.
func TestNotRequired(t *testing.T) {
	f := newFront(t, "tcp", "127.0.0.1:0", "        trusted: [127.0.0.1/32]\n        required: false\n        timeout: 30s\n")
	for _, msg := range []string{"hello", "PING\r\n", "\r\nX"} {
		c := dial(t, "tcp", f.Addr("pp"))
		start := time.Now()
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := ioReadFull(c, got); err != nil || string(got) != msg {
			t.Fatalf("echo of %q: %q, %v", msg, got, err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%q echoed after %v: the handler waited for a header", msg, d)
		}
		_ = c.Close()
	}
	f.wantRejected("", 0)
	// An untrusted peer without a header passes too, with its own address.
	g := newFront(t, "tcp", "127.0.0.1:0", "        trusted: [10.0.0.0/8]\n")
	c := dial(t, "tcp", g.Addr("pp"))
	writeAll(t, c, 0, []byte("hello"))
	if got := echoed(t, c); got != "hello" {
		t.Fatalf("untrusted peer without a header: echoed %q", got)
	}
	g.wantRejected("", 0)
}

// TestUnixListener: a Unix socket's peer is trusted without a trusted
// list, and its header's client is the one logged.
func TestUnixListener(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pp.sock")
	f := newFront(t, "unix", path, "")
	c := dial(t, "unix", path)
	writeAll(t, c, 0, header(t, 2, client, balancr), []byte("hello"))
	if got := echoed(t, c); got != "hello" {
		t.Fatalf("echoed %q", got)
	}
	if got := f.remotes(); !slices.Equal(got, []string{"203.0.113.7:4242"}) {
		t.Errorf("access log remote %q", got)
	}
	f.wantRejected("", 0)
}
