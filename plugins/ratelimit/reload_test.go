package ratelimit_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/sluice-dev/sluice/plugins/ratelimit"
)

// reloadConfig is a listener whose ratelimit allows burst connections and
// then, at 0.001/s, practically none; withLog puts a log handler before it,
// changing the chain but not the ratelimit.
func reloadConfig(burst int, withLog bool) string {
	logEntry := ""
	if withLog {
		logEntry = "      - handler: log\n        level: debug\n"
	}
	return fmt.Sprintf(`
listeners:
  - name: rl-reload
    network: tcp
    address: 127.0.0.1:0
    chain:
%s      - handler: ratelimit
        connections_per_second: 0.001
        burst: %d
        max_connections: 2
      - handler: echo
`, logEntry, burst)
}

func TestReloadKeepsStateWhenOptionsAreUnchanged(t *testing.T) {
	h := newHarness(t)
	h.Apply(reloadConfig(3, false))
	addr := h.Addr("rl-reload")
	// Tokens: 3. Slots: 2.

	held := dialFrom(t, "", addr)
	if !served(t, held) {
		t.Fatal("first connection refused")
	}
	c := dialFrom(t, "", addr)
	if !served(t, c) {
		t.Fatal("second connection refused")
	}
	finish(t, c)
	h.WaitOpen("rl-reload", 1)

	// Another part of the chain changes: a new chain, the same limiter.
	sum := h.Apply(reloadConfig(3, true))
	if !slices.Contains(sum.Changed, "rl-reload") {
		t.Fatalf("reload did not change the listener: %+v", sum)
	}
	if got := h.Addr("rl-reload"); got != addr {
		t.Fatalf("listener moved from %s to %s", addr, got)
	}
	if n := ratelimit.States(h.Supervisor.Shared()); n != 1 {
		t.Errorf("%d limiter states after the reload, want the one shared", n)
	}
	// One token of three is left, and the connection still open on the
	// old chain holds one of the two slots.
	c1 := dialFrom(t, "", addr)
	if !served(t, c1) {
		t.Fatal("third connection refused: one token was left")
	}
	if served(t, dialFrom(t, "", addr)) {
		t.Fatal("a connection over max_connections was served: the old chain's connection was forgotten")
	}
	// A refusal for want of a slot spends no token; there is none left.
	if got := rejected(h, "rl-reload", "max"); got != 1 {
		t.Errorf("rejected{reason=max} = %d, want 1", got)
	}
	finish(t, c1)
	h.WaitOpen("rl-reload", 1)
	if served(t, dialFrom(t, "", addr)) {
		t.Fatal("a fourth connection was served: the reload refilled the bucket")
	}
	if got := rejected(h, "rl-reload", "rate"); got != 1 {
		t.Errorf("rejected{reason=rate} = %d, want 1", got)
	}

	// The ratelimit's own options change: its state may start afresh.
	h.Apply(reloadConfig(4, true))
	finish(t, held)
	h.WaitIdle("rl-reload")
	if n := ratelimit.States(h.Supervisor.Shared()); n != 1 {
		t.Errorf("%d limiter states once the old chains are gone, want 1", n)
	}
	for i := 0; i < 2; i++ {
		c := dialFrom(t, "", addr)
		if !served(t, c) {
			t.Fatalf("connection %d refused after the limits changed", i+1)
		}
		finish(t, c)
	}
}

func TestStateIsForgottenWhenTheListenerGoes(t *testing.T) {
	h := newHarness(t)
	h.Apply(reloadConfig(3, false))
	c := dialFrom(t, "", h.Addr("rl-reload"))
	if !served(t, c) {
		t.Fatal("refused")
	}
	h.Apply(`
listeners:
  - name: other
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: echo
`)
	if n := ratelimit.States(h.Supervisor.Shared()); n != 1 {
		t.Errorf("%d states while a connection is open on the removed listener, want 1", n)
	}
	finish(t, c)
	h.WaitIdle("rl-reload")
	waitStates(t, h, 0)
}

func waitStates(t *testing.T, h *harness, n int) {
	t.Helper()
	for i := 0; ratelimit.States(h.Supervisor.Shared()) != n; i++ {
		if i > 1000 {
			t.Fatalf("%d limiter states, want %d", ratelimit.States(h.Supervisor.Shared()), n)
		}
		waitABit()
	}
}
