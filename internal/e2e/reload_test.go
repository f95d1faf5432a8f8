package e2e

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/saves"
)

func TestInvalidConfigKeepsServing(t *testing.T) {
	first := configText("30s", echoListener("main", "127.0.0.1:0", ""))
	p := startConfig(t, first)
	addr := p.addrOf("main")
	bad := configText("30s",
		echoListener("main", "127.0.0.1:0", "    idle_timeout: 1m\n"),
		strings.Replace(echoListener("other", "127.0.0.2:0", ""), "handler: echo", "handler: ech0", 1))
	if err := saves.Rename(p.path, []byte(bad)); err != nil {
		t.Fatal(err)
	}
	line := p.mustLog("config reload failed", nil, 5*time.Second)
	msg, _ := line["error"].(string)
	if line["@level"] != "error" || !strings.Contains(msg, `listeners[1].chain[0].handler: unknown handler "ech0"`) {
		t.Fatalf("failure not logged at error level with its key path: %v", line)
	}
	if err := checkEcho(addr); err != nil {
		t.Fatalf("the running config stopped serving: %v", err)
	}
	if m := p.logs.match("listener up", map[string]any{"listener": "other"}); len(m) != 0 {
		t.Fatal("a listener of the rejected config came up")
	}
	// Fixed, it loads.
	good := strings.Replace(bad, "ech0", "echo", 1)
	if err := saves.InPlace(p.path, []byte(good)); err != nil {
		t.Fatal(err)
	}
	p.waitReload(good, 5*time.Second)
	if err := checkEcho(p.addrOf("other")); err != nil {
		t.Fatalf("the fixed config's new listener: %v", err)
	}
}

func TestMovedAddress(t *testing.T) {
	p := startConfig(t, configText("30s", echoListener("m", "127.0.0.1:0", "")))
	oldAddr := p.addrOf("m")
	old, err := dialEcho(oldAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()

	moved := configText("30s", echoListener("m", "127.0.0.2:0", ""))
	if err := saves.Rename(p.path, []byte(moved)); err != nil {
		t.Fatal(err)
	}
	line := p.waitReload(moved, 5*time.Second)
	if line["changed"] != "m" {
		t.Fatalf("reload line %v, want m changed", line)
	}
	newAddr := p.addrOf("m")
	if newAddr == oldAddr {
		t.Fatal("the listener did not move")
	}
	if err := checkEcho(newAddr); err != nil {
		t.Fatalf("new address: %v", err)
	}
	if !refused(oldAddr) {
		t.Fatalf("the old address %s still accepts", oldAddr)
	}
	if down := p.mustLog("listener down", map[string]any{"listener": "m"}, time.Second); down["connections"] != float64(1) {
		t.Fatalf("listener down line %v, want 1 open connection", down)
	}
	// The open connection finishes normally: echo, half-close, EOF.
	if err := echo(old, []byte("still here")); err != nil {
		t.Fatalf("open connection after the move: %v", err)
	}
	if err := old.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("want a clean EOF after half-close, got %v", err)
	}
}

func TestSIGHUPReloadsWithoutWatcher(t *testing.T) {
	p := startConfig(t, configText("30s", echoListener("a", "127.0.0.1:0", "")), "--watch=false")
	p.mustLog("config file watch disabled; reload with SIGHUP", nil, time.Second)
	next := configText("30s", echoListener("a", "127.0.0.1:0", ""), echoListener("b", "127.0.0.2:0", ""))
	if err := saves.Rename(p.path, []byte(next)); err != nil {
		t.Fatal(err)
	}
	// Nothing watches: the change waits for the signal.
	time.Sleep(500 * time.Millisecond)
	if m := p.logs.match("config reloaded", nil); len(m) != 0 {
		t.Fatalf("reloaded without a signal: %v", m)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	line := p.waitReload(next, 5*time.Second)
	if line["trigger"] != "signal" || line["added"] != "b" {
		t.Fatalf("reload line %v, want trigger signal and b added", line)
	}
	if err := checkEcho(p.addrOf("b")); err != nil {
		t.Fatalf("listener added by SIGHUP: %v", err)
	}
	// The same file again: nothing to do.
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.mustLog("config unchanged; nothing to do", map[string]any{"trigger": "signal"}, 5*time.Second)
}

func TestDeletedConfigKeepsServing(t *testing.T) {
	p := startConfig(t, configText("30s", echoListener("a", "127.0.0.1:0", "")))
	addr := p.addrOf("a")
	if err := os.Remove(p.path); err != nil {
		t.Fatal(err)
	}
	line := p.mustLog("config file removed; keeping the running config until it is back", nil, 5*time.Second)
	if line["@level"] != "warn" {
		t.Fatalf("deletion logged at %v, want warn", line["@level"])
	}
	if err := checkEcho(addr); err != nil {
		t.Fatalf("after the delete: %v", err)
	}
	next := configText("30s", echoListener("a", "127.0.0.1:0", ""), echoListener("b", "127.0.0.2:0", ""))
	if err := os.WriteFile(p.path, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	p.waitReload(next, 5*time.Second)
	if err := checkEcho(p.addrOf("b")); err != nil {
		t.Fatalf("re-created config's new listener: %v", err)
	}
	if m := p.logs.match("config reload failed", nil); len(m) != 0 {
		t.Fatalf("deletion counted as a failed reload: %v", m)
	}
}

func TestLogFormatSwitchesOnReload(t *testing.T) {
	p := startConfig(t, configText("30s", echoListener("a", "127.0.0.1:0", "")))
	next := strings.Replace(configText("30s", echoListener("a", "127.0.0.1:0", ""), echoListener("b", "127.0.0.2:0", "")),
		"format: json", "format: text", 1)
	if err := saves.Rename(p.path, []byte(next)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.logs.text(), "[INFO]  sluice.reload: config reloaded: trigger=file") {
		if time.Now().After(deadline) {
			t.Fatal("no text-format reload line within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// And back to JSON, seen in the supervisor's long-lived logger too.
	back := strings.Replace(next, "format: text", "format: json", 1)
	back = strings.Replace(back, echoListener("b", "127.0.0.2:0", ""), "", 1)
	if err := saves.Rename(p.path, []byte(back)); err != nil {
		t.Fatal(err)
	}
	p.waitReload(back, 5*time.Second)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	if len(p.logs.match("shutdown finished", nil)) != 1 {
		t.Fatal("the supervisor's shutdown line is not JSON after switching back")
	}
}
