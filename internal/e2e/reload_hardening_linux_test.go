package e2e

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sluice-dev/sluice/internal/saves"
)

// TestCommentOnlyFileNotApplied: a file saved with nothing but comments
// and whitespace (not size 0) is kept out like an empty one: before, it
// removed every listener.
func TestCommentOnlyFileNotApplied(t *testing.T) {
	p := startConfig(t, configText("30s", echoListener("a", "127.0.0.1:0", "")))
	addr := p.addrOf("a")
	if err := saves.InPlace(p.path, []byte("# being rewritten\n\n   \n")); err != nil {
		t.Fatal(err)
	}
	line := p.mustLog("config file is empty; keeping the running config", nil, 10*time.Second)
	if line["@level"] != "warn" {
		t.Errorf("logged at %v, want warn", line["@level"])
	}
	if err := checkEcho(addr); err != nil {
		t.Fatalf("after a comment-only save: %v", err)
	}
	if m := p.logs.match("listener down", nil); len(m) != 0 {
		t.Fatalf("a listener went down: %v", m)
	}
	if m := p.logs.match("config reload failed", nil); len(m) != 0 {
		t.Fatalf("counted as a failed reload: %v", m)
	}
	next := configText("30s", echoListener("a", "127.0.0.1:0", ""), echoListener("b", "127.0.0.2:0", ""))
	if err := saves.InPlace(p.path, []byte(next)); err != nil {
		t.Fatal(err)
	}
	p.waitReload(next, 10*time.Second)
}

// TestTransientReloadFailureRetried: a save made while sluice has no
// descriptor to spare fails with "too many open files"; sluice says it
// will retry, and applies the file once descriptors are back, with no
// further save. Before, the save was never applied.
func TestTransientReloadFailureRetried(t *testing.T) {
	p := startConfig(t, configText("30s", echoListener("a", "127.0.0.1:0", "")))
	pid := p.cmd.Process.Pid
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Skipf("prlimit: %v", err)
	}
	// A soft limit of 0: no descriptor can be opened, whatever sluice
	// opens and closes meanwhile (the lowest free number, read from
	// /proc, raced with a descriptor closed right after the look).
	tight := unix.Rlimit{Cur: 0, Max: old.Max}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &tight, nil); err != nil {
		t.Skipf("prlimit: %v", err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &old, nil); err != nil {
				t.Errorf("restoring the descriptor limit: %v", err)
			}
		}
	}
	defer restore()

	next := configText("30s", echoListener("a", "127.0.0.1:0", ""), echoListener("b", "127.0.0.2:0", ""))
	if err := saves.Rename(p.path, []byte(next)); err != nil {
		t.Fatal(err)
	}
	line := p.mustLog("config reload failed for a transient cause; will retry", nil, 10*time.Second)
	if line["@level"] != "warn" || line["retry_in"] == nil {
		t.Errorf("retry line: %v", line)
	}
	if m := p.logs.match("config reload failed", nil); len(m) == 0 {
		t.Error("the failure itself was not logged")
	}
	restore()
	p.waitReload(next, 20*time.Second)
	if err := checkEcho(p.addrOf("b")); err != nil {
		t.Fatalf("the retried config's new listener: %v", err)
	}
}
