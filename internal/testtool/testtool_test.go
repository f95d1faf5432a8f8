package testtool

import (
	"os"
	"path/filepath"
	"testing"
)

// fakeTB records how Need ended a test instead of ending this one.
type fakeTB struct {
	testing.TB
	skipped, failed bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Skipf(string, ...any)  { f.skipped = true }
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true }
func (f *fakeTB) Logf(string, ...any)   {}
func (f *fakeTB) Name() string          { return "fake" }

func TestNeed(t *testing.T) {
	dir := t.TempDir()
	tool := filepath.Join(dir, "sluice-testtool-probe")
	if err := os.WriteFile(tool, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir())

	t.Setenv("CI", "")
	var f fakeTB
	if p := Need(&f, "sluice-testtool-probe", "probe", dir); p != tool || f.skipped || f.failed {
		t.Fatalf("in dirs: %q, skipped %v, failed %v", p, f.skipped, f.failed)
	}
	f = fakeTB{}
	Need(&f, "sluice-testtool-missing", "probe", dir)
	if !f.skipped || f.failed {
		t.Fatalf("missing outside CI: skipped %v, failed %v", f.skipped, f.failed)
	}
	t.Setenv("CI", "true")
	f = fakeTB{}
	Need(&f, "sluice-testtool-missing", "probe", dir)
	if !f.failed {
		t.Fatal("missing under CI=true did not fail")
	}
	t.Setenv("PATH", dir)
	f = fakeTB{}
	if p := Need(&f, "sluice-testtool-probe", "probe"); p != tool || f.failed || f.skipped {
		t.Fatalf("in PATH: %q, skipped %v, failed %v", p, f.skipped, f.failed)
	}
}
