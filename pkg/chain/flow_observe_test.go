package chain

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
)

func TestFlowCountsPacketsAndShowsReplies(t *testing.T) {
	fail := errors.New("no buffer space")
	f := testFlow(func(b []byte, _ netip.AddrPort) (int, error) {
		if string(b) == "fail" {
			return 0, fail
		}
		return len(b), nil
	}, nil)
	f.AddIn(5)
	f.AddIn(0) // an empty datagram is a datagram
	var seen []string
	f.OnReply(func(b []byte) { seen = append(seen, "1:"+string(b)) })
	if _, err := f.Reply([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	f.OnReply(func(b []byte) { seen = append(seen, "2:"+string(b)) })
	if _, err := f.Reply(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Reply([]byte("fail")); !errors.Is(err, fail) {
		t.Fatalf("reply error %v", err)
	}
	if f.PacketsIn() != 2 || f.BytesIn() != 5 {
		t.Errorf("in: %d packets, %d bytes; want 2 and 5", f.PacketsIn(), f.BytesIn())
	}
	// The failed send is neither counted nor shown.
	if f.PacketsOut() != 2 || f.BytesOut() != 5 {
		t.Errorf("out: %d packets, %d bytes; want 2 and 5", f.PacketsOut(), f.BytesOut())
	}
	want := []string{"1:hello", "1:", "2:"}
	if len(seen) != len(want) || seen[0] != want[0] || seen[1] != want[1] || seen[2] != want[2] {
		t.Errorf("hooks saw %q, want %q", seen, want)
	}
}

// TestFlowOnReplyWhileReplying: a hook may be added while another
// goroutine (a proxy's relay) replies; run with -race.
func TestFlowOnReplyWhileReplying(t *testing.T) {
	f := testFlow(func(b []byte, _ netip.AddrPort) (int, error) { return len(b), nil }, nil)
	var calls atomic.Int64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 1000 {
			_, _ = f.Reply([]byte("x"))
		}
	}()
	go func() {
		defer wg.Done()
		for range 10 {
			f.OnReply(func([]byte) { calls.Add(1) })
		}
	}()
	wg.Wait()
	if _, err := f.Reply([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if f.PacketsOut() != 1001 || calls.Load() < 10 {
		t.Fatalf("%d packets out, %d hook calls; want 1001 and at least 10", f.PacketsOut(), calls.Load())
	}
}
