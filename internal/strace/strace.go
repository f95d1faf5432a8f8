// Package strace runs one test of the calling test binary under strace(1),
// for the tests that prove a claim at the system-call level: that splice
// moves the bytes, that a wait costs one empty peek. The traced test is
// a child that skips unless its environment variable is set; the parent
// runs it and reads what strace saw.
package strace

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/testtool"
)

// Run re-executes the test binary under `strace -f` tracing the calls
// named in calls (strace's -e trace= list), running only the test child
// with env ("NAME=value") added, and returns the trace. It fails the test
// when the child fails or skips, and skips when strace is missing (fails
// under CI=true, whose .ci/run installs it) or may not trace here.
func Run(t *testing.T, calls, child, env string) string {
	t.Helper()
	bin := testtool.Need(t, "strace", "strace")
	trace := filepath.Join(t.TempDir(), "trace")
	cmd := exec.Command(bin, "-f", "-qq", "-e", "trace="+calls, "-o", trace,
		os.Args[0], "-test.run=^"+child+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), env)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("PTRACE")) || bytes.Contains(out, []byte("ptrace")) {
			t.Skipf("strace cannot trace here: %s", out)
		}
		t.Fatalf("%s under strace: %v\n%s", child, err, out)
	}
	if !bytes.Contains(out, []byte("--- PASS: "+child)) {
		t.Fatalf("%s did not run under strace (skipped?):\n%s", child, out)
	}
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// result is a call's end: its last closing parenthesis (a string
// argument may hold one too), the padding strace adds to align results,
// and what it returned.
var result = regexp.MustCompile(`^.*\)\s*= (.+)$`)

// Results returns what each call to name in trace returned, as strace
// prints it after "= " ("4096", "-1 EAGAIN (Resource temporarily
// unavailable)"), in the order the calls ended. strace -f splits a call
// another thread interrupted into "name(... <unfinished ...>" and
// "<... name resumed> ...) = result"; the result is on the second line.
func Results(trace, name string) []string {
	var rs []string
	for _, line := range strings.Split(trace, "\n") {
		if strings.Contains(line, "<unfinished ...>") {
			continue
		}
		if !strings.Contains(line, name+"(") && !strings.Contains(line, "<... "+name+" resumed>") {
			continue
		}
		if m := result.FindStringSubmatch(line); m != nil {
			rs = append(rs, m[1])
		}
	}
	return rs
}
