package route

import "testing"

// TestHandshakeMessageTinyRecordsLinear: a client may split its
// ClientHello into records of one byte each. Joining them must cost
// linear work: copying the joined message once per record made a 64 KiB
// message in 1-byte records cost seconds of CPU on every look, which a
// few clients could keep up (max_bytes 1MiB). Allocations tell the two
// apart without timing: amortized growth makes a few dozen, a copy per
// record makes one per record.
func TestHandshakeMessageTinyRecordsLinear(t *testing.T) {
	one := clientHello(t, "a.example.com", "h2")
	b := records(one, 1)
	if h, v := parseHello(b); v != yes || h.sni != "a.example.com" {
		t.Fatalf("hello in %d 1-byte records: %+v, %v", len(one)-5, h, v)
	}
	allocs := testing.AllocsPerRun(5, func() { _, _ = handshakeMessage(b) })
	if allocs > 64 {
		t.Errorf("joining %d 1-byte records: %.0f allocations, want a few dozen at most", len(one)-5, allocs)
	}
}
