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
	"strconv"
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

// Call is one system call as strace printed it.
type Call struct {
	// FD is its first argument when that is a number, as a descriptor
	// is; -1 otherwise.
	FD int
	// Result is what it returned, as strace prints it after "= ":
	// "4096", "-1 EAGAIN (Resource temporarily unavailable)".
	Result string
}

// Calls returns the calls to name in trace, in the order they ended.
// strace -f starts each line with the thread's ID, and splits a call
// another thread interrupted into "TID name(args <unfinished ...>" and
// "TID <... name resumed>rest) = result": the halves are joined by TID.
func Calls(trace, name string) []Call {
	var calls []Call
	pending := map[string]int{} // by TID: the FD of a call not ended yet
	for _, line := range strings.Split(trace, "\n") {
		tid, rest, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		rest = strings.TrimSpace(rest)
		var fd int
		switch {
		case strings.HasPrefix(rest, name+"("):
			fd = firstArg(rest[len(name)+1:])
			if strings.HasSuffix(rest, "<unfinished ...>") {
				pending[tid] = fd
				continue
			}
		case strings.HasPrefix(rest, "<... "+name+" resumed>"):
			var ok bool
			if fd, ok = pending[tid]; !ok {
				fd = -1
			}
			delete(pending, tid)
		default:
			continue
		}
		if m := result.FindStringSubmatch(rest); m != nil {
			calls = append(calls, Call{FD: fd, Result: m[1]})
		}
	}
	return calls
}

// firstArg is the number args starts with, or -1.
func firstArg(args string) int {
	end := strings.IndexAny(args, ",)")
	if end < 0 {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(args[:end]))
	if err != nil {
		return -1
	}
	return n
}
