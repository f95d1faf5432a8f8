package ratelimit

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestIPTableIdleEntriesExpireOnceTheirBucketIsFull(t *testing.T) {
	tb := newIPTable(1, 5, 0, 100) // 1/s, burst 5: full again 5 s after the last use
	for i := 0; i < 5; i++ {
		e, r := tb.admit(addr("192.0.2.1"), t0)
		if r != none {
			t.Fatalf("connection %d refused: %v", i+1, r)
		}
		tb.release(e, t0)
	}
	if _, r := tb.admit(addr("192.0.2.1"), t0); r != reasonIPRate {
		t.Fatalf("6th connection in the same instant: %v, want per_ip_rate", r)
	}
	// Another address's admit sweeps; before 5 s the entry stays.
	e, _ := tb.admit(addr("192.0.2.2"), t0.Add(4*time.Second))
	tb.release(e, t0.Add(4*time.Second))
	if _, ok := tb.entries[addr("192.0.2.1")]; !ok {
		t.Fatal("entry dropped before its bucket refilled")
	}
	e, _ = tb.admit(addr("192.0.2.3"), t0.Add(5*time.Second))
	tb.release(e, t0.Add(5*time.Second))
	if _, ok := tb.entries[addr("192.0.2.1")]; ok {
		t.Fatal("idle entry kept after its bucket refilled")
	}
	if tb.len() != 2 {
		t.Fatalf("table holds %d entries, want 2", tb.len())
	}
}

func TestIPTableWithoutRateForgetsAtOnce(t *testing.T) {
	tb := newIPTable(0, 0, 2, 100)
	e1, _ := tb.admit(addr("2001:db8::1"), t0)
	e2, _ := tb.admit(addr("2001:db8::1"), t0)
	if _, r := tb.admit(addr("2001:db8::1"), t0); r != reasonIPMax {
		t.Fatalf("3rd connection: %v, want per_ip_max", r)
	}
	tb.release(e1, t0)
	if tb.len() != 1 {
		t.Fatal("entry with an open connection dropped")
	}
	tb.release(e2, t0)
	if tb.len() != 0 {
		t.Fatalf("%d entries with nothing open and no rate, want 0", tb.len())
	}
}

func TestIPTableFullEvictsLeastRecentlyUsedIdle(t *testing.T) {
	tb := newIPTable(0.001, 2, 0, 3) // entries would live 2000 s
	open, _ := tb.admit(addr("10.0.0.1"), t0)
	for i, a := range []string{"10.0.0.2", "10.0.0.3"} {
		e, _ := tb.admit(addr(a), t0.Add(time.Duration(i)*time.Second))
		tb.release(e, t0.Add(time.Duration(i)*time.Second))
	}
	// Full: the oldest idle entry (10.0.0.2) makes room, not the open one.
	e, r := tb.admit(addr("10.0.0.4"), t0.Add(3*time.Second))
	if r != none {
		t.Fatalf("new address refused: %v", r)
	}
	if _, ok := tb.entries[addr("10.0.0.2")]; ok {
		t.Fatal("the least recently used idle entry was kept")
	}
	if _, ok := tb.entries[addr("10.0.0.1")]; !ok {
		t.Fatal("an entry with an open connection was evicted")
	}
	// Every entry open: a new address is refused, the table stays at cap.
	if _, r := tb.admit(addr("10.0.0.3"), t0.Add(3*time.Second)); r != none {
		t.Fatalf("10.0.0.3 again: %v", r)
	}
	if _, r := tb.admit(addr("10.0.0.5"), t0.Add(3*time.Second)); r != reasonIPFull {
		t.Fatalf("with every entry open: %v, want per_ip_full", r)
	}
	if tb.len() != 3 {
		t.Fatalf("table holds %d, want its cap, 3", tb.len())
	}
	tb.release(open, t0.Add(4*time.Second))
	tb.release(e, t0.Add(4*time.Second))
	if _, r := tb.admit(addr("10.0.0.5"), t0.Add(4*time.Second)); r != none {
		t.Fatalf("after a release: %v, want admitted", r)
	}
}

func TestSourceKeys(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want netip.Addr
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1}, addr("192.0.2.7")},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 2}, addr("192.0.2.7")},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 3}, addr("2001:db8::7")},
		{&net.UnixAddr{Name: "@", Net: "unix"}, netip.Addr{}},
		{&net.UnixAddr{Name: "/run/a.sock", Net: "unix"}, netip.Addr{}},
	}
	for _, tt := range tests {
		if got := sourceOf(tt.addr); got != tt.want {
			t.Errorf("sourceOf(%v) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

func TestIPTableTTLOfATinyRateDoesNotOverflow(t *testing.T) {
	if tb := newIPTable(1e-15, 10, 0, 1); tb.idleTTL <= 0 {
		t.Fatalf("idle TTL %v, want a long positive one", tb.idleTTL)
	}
}

func TestIPTableAllowSpendsPerAddressAndStaysBounded(t *testing.T) {
	tb := newIPTable(1, 2, 0, 3) // 1/s, burst 2: full again 2 s after the last use
	for i, want := range []bool{true, true, false} {
		if got := tb.allow(addr("192.0.2.1"), t0); got != want {
			t.Fatalf("datagram %d in one instant: allowed %v, want %v", i+1, got, want)
		}
	}
	if !tb.allow(addr("192.0.2.1"), t0.Add(time.Second)) {
		t.Fatal("no token a second later")
	}
	// New addresses fill the table; each one past the cap evicts the
	// least recently used address, and none is refused.
	for i, a := range []string{"192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"} {
		if !tb.allow(addr(a), t0.Add(time.Second+time.Duration(i+1)*time.Millisecond)) {
			t.Fatalf("%s refused its first datagram", a)
		}
	}
	if tb.len() != 3 {
		t.Fatalf("table holds %d, want its cap, 3", tb.len())
	}
	for _, a := range []string{"192.0.2.1", "192.0.2.2"} {
		if _, ok := tb.entries[addr(a)]; ok {
			t.Fatalf("%s kept; the two least recently used addresses should have made room", a)
		}
	}
	// Entries go once their buckets are full again.
	tb.allow(addr("192.0.2.9"), t0.Add(10*time.Second))
	if tb.len() != 1 {
		t.Fatalf("table holds %d after every bucket refilled, want 1", tb.len())
	}
}

// BenchmarkIPTableAllow is the per-datagram cost of packets_per_second
// for a client whose entry exists.
func BenchmarkIPTableAllow(b *testing.B) {
	tb := newIPTable(1e9, 1e6, 0, DefaultMaxEntries)
	a := addr("192.0.2.1")
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		tb.allow(a, now)
	}
}
