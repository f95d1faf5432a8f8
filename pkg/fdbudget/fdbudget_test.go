package fdbudget

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
)

func TestReserveAndUDPBudget(t *testing.T) {
	for _, tc := range []struct{ limit, reserve, udp int }{
		{64, 16, 16},
		{1024, 128, 256},
		{524288, 256, 131072},
	} {
		if r := ReserveFor(tc.limit); r != tc.reserve {
			t.Errorf("ReserveFor(%d) = %d, want %d", tc.limit, r, tc.reserve)
		}
		if u := UDPBudgetFor(tc.limit); u != tc.udp {
			t.Errorf("UDPBudgetFor(%d) = %d, want %d", tc.limit, u, tc.udp)
		}
	}
}

// Take stops short of the reserve, counting what it handed out, and a
// fresh count (descriptors closed meanwhile) lets it hand out again.
func TestTakeKeepsReserve(t *testing.T) {
	open := 10
	b := New(1024) // reserve 128: at most 896 in use by Take
	b.count = func() (int, error) { return open, nil }
	b.counted = open
	taken := 0
	for b.Take(2) {
		taken += 2
		open += 2
		if taken > 2000 {
			t.Fatal("Take never refused")
		}
	}
	if open > 1024-128 || open < 1024-128-2 {
		t.Errorf("Take stopped at %d open, want just under %d", open, 1024-128)
	}
	open = 10 // the connections closed
	b.countedAt = b.countedAt.Add(-recountEvery)
	if !b.Take(2) {
		t.Error("Take refused after descriptors were freed")
	}
}

// A limit changed on the running process (prlimit) is what the next
// count works with: a budget made while the limit was 0 refuses; once the
// limit is raised, it hands out again, with the reserve and the UDP
// share of the new limit.
func TestTakeFollowsTheLimit(t *testing.T) {
	limit := 0
	b := New(limit)
	b.limitFn = func() int { return limit }
	b.count = func() (int, error) { return 10, nil }
	b.counted = 10
	b.countedAt = b.countedAt.Add(-recountEvery)
	if b.Take(2) {
		t.Fatal("Take handed out descriptors under a limit of 0")
	}
	limit = 4096
	if b.Take(2) {
		t.Fatal("Take looked at the limit again sooner than recountEvery")
	}
	b.countedAt = b.countedAt.Add(-recountEvery)
	if !b.Take(2) {
		t.Fatal("Take refused after the limit was raised")
	}
	if b.Limit() != 4096 || b.Reserve() != 256 || b.UDPBudget() != 1024 {
		t.Errorf("limit %d, reserve %d, UDP budget %d; want 4096, 256, 1024", b.Limit(), b.Reserve(), b.UDPBudget())
	}
}

func TestTakeUDPBudget(t *testing.T) {
	b := New(64) // UDP budget 16
	b.count = func() (int, error) { return 0, nil }
	b.counted = 0
	for i := range 16 {
		if err := b.TakeUDP(); err != nil {
			t.Fatalf("TakeUDP %d: %v", i, err)
		}
	}
	if err := b.TakeUDP(); !errors.Is(err, ErrShortage) {
		t.Fatalf("TakeUDP over the budget: %v, want ErrShortage", err)
	}
	b.ReleaseUDP()
	if err := b.TakeUDP(); err != nil {
		t.Errorf("TakeUDP after a release: %v", err)
	}
	if b.UDPInUse() != 16 {
		t.Errorf("UDPInUse %d, want 16", b.UDPInUse())
	}
}

func TestIsShortage(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("x: %w", ErrShortage), true},
		{fmt.Errorf("dial: %w", syscall.EMFILE), true},
		{syscall.ENFILE, true},
		{syscall.ECONNREFUSED, false},
		{nil, false},
	} {
		if got := IsShortage(tc.err); got != tc.want {
			t.Errorf("IsShortage(%v) = %v", tc.err, got)
		}
	}
}

func TestCountOpen(t *testing.T) {
	n, err := countOpen()
	if err != nil || n < 3 {
		t.Errorf("countOpen = %d, %v", n, err)
	}
}
