package reload

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluice-dev/sluice/internal/saves"
	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/listener"
)

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 5s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// refused reports whether nothing accepts on addr.
func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return true
	}
	_ = c.Close()
	return false
}

func TestOldConnectionKeepsOldChain(t *testing.T) {
	e := start(t, configYAML("1m", listenerYAML("a", "127.0.0.1:0", "keep-old")), true)
	addr := e.addr("a")
	old := dialTag(t, addr)
	if got := old.ask(t); got != "keep-old" {
		t.Fatalf("first chain answers %q", got)
	}

	next := configYAML("1m", listenerYAML("a", "127.0.0.1:0", "keep-new"))
	if err := saves.Rename(e.path, []byte(next)); err != nil {
		t.Fatal(err)
	}
	e.waitReload(e.hashOf(next))

	fresh := dialTag(t, addr)
	for range 3 {
		if got := fresh.ask(t); got != "keep-new" {
			t.Fatalf("new connection answered by %q, want the new chain", got)
		}
		if got := old.ask(t); got != "keep-old" {
			t.Fatalf("old connection answered by %q, want the chain it started with", got)
		}
	}
	if n := closes("keep-old"); n != 0 {
		t.Fatalf("the old chain was closed while its connection is open (%d closes)", n)
	}

	// Its last connection gone, the old chain is closed; the new one is not.
	_ = old.Close()
	waitFor(t, "the old chain to close", func() bool { return closes("keep-old") == 1 })
	if n := closes("keep-new"); n != 0 {
		t.Fatalf("the new chain was closed (%d)", n)
	}
	if got := fresh.ask(t); got != "keep-new" {
		t.Fatalf("after the old chain closed, answered by %q", got)
	}
}

// TestRetiredChainClosedAfterReloadDrainTimeout: with reload.drain_timeout
// set, a connection on a retired chain is closed once it has passed (and
// shutdown.drain_timeout, a minute here, plays no part).
func TestRetiredChainClosedAfterReloadDrainTimeout(t *testing.T) {
	const drain = 300 * time.Millisecond
	cfg := func(tag string) string {
		return strings.Replace(configYAML("1m", listenerYAML("a", "127.0.0.1:0", tag)),
			"listeners:\n", "reload:\n  drain_timeout: "+drain.String()+"\nlisteners:\n", 1)
	}
	e := start(t, cfg("drain-old"), false)
	old := dialTag(t, e.addr("a"))
	if got := old.ask(t); got != "drain-old" {
		t.Fatalf("first chain answers %q", got)
	}
	if err := os.WriteFile(e.path, []byte(cfg("drain-new")), 0o644); err != nil {
		t.Fatal(err)
	}
	// The drain timer starts inside Reload, so after this instant.
	before := time.Now()
	if _, err := e.rl.Reload(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	_ = old.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := old.r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("want the server to close the lingering connection, got %v", err)
	}
	if took := time.Since(before); took < drain {
		t.Fatalf("closed after %v, before the drain timeout %v", took, drain)
	}
	waitFor(t, "the retired chain to close", func() bool { return closes("drain-old") == 1 })
	if got := tagOf(t, e.addr("a")); got != "drain-new" {
		t.Fatalf("new connections answered by %q", got)
	}
}

// TestChangeTable applies every row of docs/reload.md's change table in one reload.
func TestChangeTable(t *testing.T) {
	movedTo := freePort(t)
	e := start(t, configYAML("1m",
		listenerYAML("same", "127.0.0.1:0", "tbl-same"),
		listenerYAML("changed", "127.0.0.2:0", "tbl-changed-1"),
		listenerYAML("moved", freePort(t), "tbl-moved"),
		listenerYAML("removed", freePort(t), "tbl-removed"),
	), false)
	sameAddr, movedFrom, removedAddr := e.addr("same"), e.addr("moved"), e.addr("removed")
	changedAddr := e.addr("changed")
	open := map[string]*tagConn{}
	for _, name := range []string{"same", "changed", "moved", "removed"} {
		open[name] = dialTag(t, e.addr(name))
		open[name].ask(t)
	}

	next := configYAML("1m",
		listenerYAML("same", "127.0.0.1:0", "tbl-same"),
		listenerYAML("changed", "127.0.0.2:0", "tbl-changed-2"),
		listenerYAML("moved", movedTo, "tbl-moved"),
		listenerYAML("added", "127.0.0.3:0", "tbl-added"),
	)
	if err := os.WriteFile(e.path, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := e.rl.Reload(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sum.Added, []string{"added"}) || !slices.Equal(sum.Removed, []string{"removed"}) ||
		!slices.Equal(sum.Changed, []string{"changed", "moved"}) {
		t.Fatalf("summary %+v", sum)
	}
	line := e.logs.find("config reloaded")[0]
	if line["added"] != "added" || line["removed"] != "removed" || line["changed"] != "changed,moved" || line["sha256"] != e.hashOf(next)[:12] {
		t.Fatalf("config reloaded line %v", line)
	}

	// Unchanged: same socket, same chain, nothing closed.
	if a := e.addr("same"); a != sameAddr {
		t.Fatalf("unchanged listener moved from %s to %s", sameAddr, a)
	}
	if closes("tbl-same") != 0 {
		t.Fatal("the unchanged listener's chain was closed")
	}
	// Changed: same socket, new chain for new connections.
	if a := e.addr("changed"); a != changedAddr {
		t.Fatalf("changed listener's socket moved from %s to %s", changedAddr, a)
	}
	if got := tagOf(t, changedAddr); got != "tbl-changed-2" {
		t.Fatalf("changed listener answers new connections with %q", got)
	}
	// Moved: the new address serves, the old refuses.
	if got := tagOf(t, movedTo); got != "tbl-moved" {
		t.Fatalf("moved listener answers %q at its new address", got)
	}
	if !refused(movedFrom) {
		t.Fatalf("the old address %s still accepts", movedFrom)
	}
	// Removed: refuses.
	if !refused(removedAddr) {
		t.Fatalf("the removed listener's address %s still accepts", removedAddr)
	}
	// Added: serves.
	if got := tagOf(t, e.addr("added")); got != "tbl-added" {
		t.Fatalf("added listener answers %q", got)
	}
	// Every connection open before the reload still works on its chain.
	want := map[string]string{"same": "tbl-same", "changed": "tbl-changed-1", "moved": "tbl-moved", "removed": "tbl-removed"}
	for name, c := range open {
		if got := c.ask(t); got != want[name] {
			t.Fatalf("open connection on %s answered by %q, want %q", name, got, want[name])
		}
	}
}

func TestInvalidConfigKeepsRunningConfig(t *testing.T) {
	e := start(t, configYAML("5s", listenerYAML("a", "127.0.0.1:0", "inv-v1")), true)
	addr := e.addr("a")
	notBound := freePort(t)
	bad := configYAML("5s",
		strings.Replace(listenerYAML("a", "127.0.0.1:0", "inv-v2"), "handler: tag", "handler: tga", 1),
		listenerYAML("b", notBound, "inv-b"))
	if err := saves.Rename(e.path, []byte(bad)); err != nil {
		t.Fatal(err)
	}
	e.waitLog("config reload failed", 1)
	line := e.logs.find("config reload failed")[0]
	msg, _ := line["error"].(string)
	if line["@level"] != "error" || !strings.Contains(msg, `listeners[0].chain[0].handler: unknown handler "tga"`) {
		t.Fatalf("failure line does not name the key path at error level: %v", line)
	}
	if got := tagOf(t, addr); got != "inv-v1" {
		t.Fatalf("after a rejected config, answered by %q", got)
	}
	if !refused(notBound) {
		t.Fatal("a listener of the rejected config accepts")
	}
	if n := testutil.ToFloat64(e.m.ConfigReloads.WithLabelValues("failure")); n != 1 {
		t.Fatalf("failure count %v, want 1", n)
	}

	good := configYAML("5s", listenerYAML("a", "127.0.0.1:0", "inv-v3"))
	if err := saves.Rename(e.path, []byte(good)); err != nil {
		t.Fatal(err)
	}
	e.waitReload(e.hashOf(good))
	if got := tagOf(t, addr); got != "inv-v3" {
		t.Fatalf("after a fixed config, answered by %q", got)
	}
}

// TestBindFailureRollsBack: a new socket that cannot be bound fails the
// whole reload, and what the reload had bound and built is closed again.
func TestBindFailureRollsBack(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	fresh := freePort(t)
	first := configYAML("5s", listenerYAML("a", "127.0.0.1:0", "rb-a1"))
	e := start(t, first, false)
	addr := e.addr("a")

	next := configYAML("5s",
		listenerYAML("a", "127.0.0.1:0", "rb-a2"),
		listenerYAML("b", fresh, "rb-b"),
		listenerYAML("c", busy.Addr().String(), "rb-c"))
	if err := os.WriteFile(e.path, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = e.rl.Reload(context.Background(), "test")
	if !errors.Is(err, listener.ErrInUse) || !strings.Contains(err.Error(), "listeners[2] (c)") {
		t.Fatalf("want an address-in-use error naming listeners[2], got %v", err)
	}
	if got := tagOf(t, addr); got != "rb-a1" {
		t.Fatalf("after a failed reload, answered by %q", got)
	}
	if !refused(fresh) {
		t.Fatal("the socket bound by the failed reload is still open")
	}
	for _, tag := range []string{"rb-a2", "rb-b", "rb-c"} {
		if n := closes(tag); n != 1 {
			t.Fatalf("handler %s built by the failed reload closed %d times, want 1", tag, n)
		}
	}
	if closes("rb-a1") != 0 {
		t.Fatal("the running chain was closed")
	}
	if e.sup.Config().Hash != e.hashOf(first) {
		t.Fatal("the running config changed")
	}
	if n := e.logs.count("config reload failed"); n != 1 {
		t.Fatalf("%d failure lines, want 1", n)
	}
}

// stage records what the reloader asks of it.
type stage struct {
	fail  error
	calls []string
}

func (s *stage) Prepare(_ context.Context, _ *config.Config) (Pending, error) {
	s.calls = append(s.calls, "prepare")
	if s.fail != nil {
		return nil, s.fail
	}
	return pending{s}, nil
}

type pending struct{ s *stage }

func (p pending) Commit() { p.s.calls = append(p.s.calls, "commit") }
func (p pending) Abort()  { p.s.calls = append(p.s.calls, "abort") }

func TestStagesFollowTheTransaction(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	e := start(t, configYAML("5s", listenerYAML("a", "127.0.0.1:0", "st-1")), false)
	ok, failing := &stage{}, &stage{}
	e.rl.AddStage(ok)
	e.rl.AddStage(failing)
	reload := func(text string) error {
		t.Helper()
		if err := os.WriteFile(e.path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := e.rl.Reload(context.Background(), "test")
		return err
	}
	reset := func() { ok.calls, failing.calls = nil, nil }

	// A stage that fails aborts the ones prepared before it, and the
	// supervisor is not touched.
	failing.fail = errors.New("admin address in use")
	if err := reload(configYAML("5s", listenerYAML("a", "127.0.0.1:0", "st-2"))); err == nil {
		t.Fatal("a failing stage did not fail the reload")
	}
	if !slices.Equal(ok.calls, []string{"prepare", "abort"}) {
		t.Fatalf("first stage saw %v", ok.calls)
	}
	if got := tagOf(t, e.addr("a")); got != "st-1" {
		t.Fatalf("a failed stage let the supervisor apply (%q)", got)
	}

	// The supervisor failing aborts every stage.
	reset()
	failing.fail = nil
	if err := reload(configYAML("5s", listenerYAML("a", "127.0.0.1:0", "st-3"), listenerYAML("b", busy.Addr().String(), "st-b"))); err == nil {
		t.Fatal("a busy address did not fail the reload")
	}
	if !slices.Equal(ok.calls, []string{"prepare", "abort"}) || !slices.Equal(failing.calls, []string{"prepare", "abort"}) {
		t.Fatalf("stages saw %v and %v", ok.calls, failing.calls)
	}

	// Success commits every stage.
	reset()
	next := configYAML("5s", listenerYAML("a", "127.0.0.1:0", "st-4"))
	if err := reload(next); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ok.calls, []string{"prepare", "commit"}) || !slices.Equal(failing.calls, []string{"prepare", "commit"}) {
		t.Fatalf("stages saw %v and %v", ok.calls, failing.calls)
	}

	// An unchanged config reaches no stage.
	reset()
	if err := reload(next); err != nil {
		t.Fatal(err)
	}
	if len(ok.calls)+len(failing.calls) != 0 {
		t.Fatalf("an unchanged config reached the stages: %v %v", ok.calls, failing.calls)
	}
	if n := e.logs.count("config unchanged; nothing to do"); n != 1 {
		t.Fatalf("%d unchanged lines, want 1", n)
	}
}

func TestLogSettingsApplyAtOnce(t *testing.T) {
	e := start(t, configYAML("5s", listenerYAML("a", "127.0.0.1:0", "log-1")), false)
	next := strings.Replace(configYAML("5s", listenerYAML("a", "127.0.0.1:0", "log-1"), listenerYAML("b", "127.0.0.2:0", "log-b")),
		"level: debug\n  format: json", "level: warn\n  format: text", 1)
	if err := os.WriteFile(e.path, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rl.Reload(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	// The settings take effect as the reload commits: the info line
	// that reports it is already hidden by the new level.
	e.logs.mu.Lock()
	raw := strings.Join(e.logs.raw, "\n")
	e.logs.mu.Unlock()
	if strings.Contains(raw, "config reloaded") {
		t.Fatalf("info lines logged after the level went to warn:\n%s", raw)
	}
	// A derived logger made long before (the supervisor's) writes text.
	if err := os.WriteFile(e.path, []byte(strings.Replace(next, "level: warn", "level: info", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rl.Reload(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	e.logs.mu.Lock()
	raw = strings.Join(e.logs.raw, "\n")
	e.logs.mu.Unlock()
	if !strings.Contains(raw, "[INFO]  sluice.reload: config reloaded: trigger=test") {
		t.Fatalf("the reload line is not in text format:\n%s", raw)
	}
	_ = e.sup.Shutdown(context.Background())
	e.logs.mu.Lock()
	raw = strings.Join(e.logs.raw, "\n")
	e.logs.mu.Unlock()
	if !strings.Contains(raw, "[INFO]  sluice.supervisor: shutdown started:") {
		t.Fatalf("the supervisor's logger is not in text format:\n%s", raw)
	}
}
