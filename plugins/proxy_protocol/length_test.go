package proxyprotocol_test

import (
	"encoding/binary"
	"slices"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// v2WithLength is a v2 PROXY TCP4 header whose length field says n: the
// addresses, then a TLV padding them to n when the header is complete.
func v2WithLength(n uint16, complete bool) []byte {
	b := append(slices.Clone(proxyproto.SIGV2), 0x21, 0x11, byte(n>>8), byte(n))
	b = append(b, 203, 0, 113, 7, 198, 51, 100, 1, 0x10, 0x92, 0x01, 0xbb)
	if !complete {
		return b
	}
	pad := int(n) - 12 - 3
	b = append(b, 0xE0, byte(pad>>8), byte(pad))
	return append(b, make([]byte, pad)...)
}

// TestV2LengthOverLimit: a v2 header announcing more than go-proxyproto
// accepts (proxyproto.MaxV2HeaderSize) is refused as soon as its length is
// read, not after the peer sent up to 64 KiB or the timeout passed: a
// peer, trusted or not, that announced the largest length and stalled
// made sluice hold a 64 KiB buffer for it until timeout (5,000 such peers:
// 428 MB resident).
func TestV2LengthOverLimit(t *testing.T) {
	over := v2WithLength(proxyproto.MaxV2HeaderSize+1, false)
	for _, tt := range []struct {
		name, opts, reason string
	}{
		{"trusted", "        trusted: [127.0.0.1]\n        timeout: 1m\n", "malformed"},
		{"untrusted", "        trusted: [10.0.0.0/8]\n        timeout: 1m\n", "untrusted"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFront(t, "tcp", "127.0.0.1:0", tt.opts)
			c := dial(t, "tcp", f.Addr("pp"))
			start := time.Now()
			writeAll(t, c, 0, over)
			closed(t, c) // within dial's 10s deadline, far less than the 1m timeout
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("closed after %v", d)
			}
			f.WaitIdle("pp")
			f.wantRejected(tt.reason, 1)
		})
	}
}

// TestV2LengthAtLimit: the longest header go-proxyproto accepts passes,
// in segments, with the client's address.
func TestV2LengthAtLimit(t *testing.T) {
	h := v2WithLength(proxyproto.MaxV2HeaderSize, true)
	if got := binary.BigEndian.Uint16(h[14:16]); int(got) != len(h)-16 {
		t.Fatalf("test header: length %d, body %d", got, len(h)-16)
	}
	f := newFront(t, "tcp", "127.0.0.1:0", "        trusted: [127.0.0.1]\n")
	c := dial(t, "tcp", f.Addr("pp"))
	writeAll(t, c, 20*time.Millisecond, h[:100], h[100:], []byte("hello"))
	if got := echoed(t, c); got != "hello" {
		t.Fatalf("echoed %q", got)
	}
	f.WaitIdle("pp")
	if r := f.remotes(); len(r) != 1 || r[0] != "203.0.113.7:4242" {
		t.Errorf("remote %v", r)
	}
}
