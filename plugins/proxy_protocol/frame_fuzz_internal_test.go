package proxyprotocol

import (
	"bytes"
	"slices"
	"testing"

	proxyproto "github.com/pires/go-proxyproto"
)

// FuzzFrame: no input panics the framing or the parse, a header is never
// longer than the protocol allows (so no peer makes a connection hold
// more), and framing one byte at a time decides as framing it whole.
func FuzzFrame(f *testing.F) {
	f.Add([]byte("PROXY TCP4 203.0.113.7 198.51.100.1 4242 443\r\nhello"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(append(slices.Clone(proxyproto.SIGV2), 0x21, 0x11, 0, 12, 203, 0, 113, 7, 198, 51, 100, 1, 0x10, 0x92, 0x01, 0xbb))
	f.Add(append(slices.Clone(proxyproto.SIGV2), 0x20, 0x00, 0, 0))
	// A length past what go-proxyproto accepts: refused at once.
	f.Add(append(slices.Clone(proxyproto.SIGV2), 0x21, 0x11, 0xff, 0xff))
	f.Add(append(slices.Clone(proxyproto.SIGV2), bytes.Repeat([]byte{0xff}, 64)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, done := frame(b)
		if n > v2Fixed+int(proxyproto.MaxV2HeaderSize) || (n > maxV1 && bytes.HasPrefix(b, sigV1)) {
			t.Fatalf("frame asks for %d bytes", n)
		}
		if done && n > 0 {
			_ = parse(b, n)
		}
		// The first prefix that decides decides as the whole input.
		for i := 1; i <= len(b); i++ {
			if m, ok := frame(b[:i]); ok {
				if m != n || !done {
					t.Fatalf("prefix of %d bytes: %d %v; whole: %d %v", i, m, ok, n, done)
				}
				break
			}
		}
	})
}
