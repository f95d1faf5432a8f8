package admin_test

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-dev/sluice/internal/testbin"
)

// sluiceBin is the real binary, built once by TestMain for the end-to-end
// tests; "" with -short, which skips them.
var sluiceBin string

func TestMain(m *testing.M) {
	flag.Parse()
	cleanup := func() {}
	if !testing.Short() {
		b, c, err := testbin.Build()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		sluiceBin, cleanup = b, c
	}
	code := m.Run()
	// Every server, shutdown and connection goroutine must have ended
	// once the tests' cleanups ran.
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	cleanup()
	os.Exit(code)
}

// proc is a running sluice binary; its stderr (the log) is kept.
type proc struct {
	t     *testing.T
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	// exited receives the process's end once stderr is drained.
	exited chan error
	done   bool
}

// startSluice runs `sluice run -c path`; the process is killed when the
// test ends if it is still running.
func startSluice(t *testing.T, path string) *proc {
	t.Helper()
	if sluiceBin == "" {
		t.Skip("end-to-end test: skipped with -short")
	}
	// --watch=false: these tests reload by SIGHUP and POST /reload and
	// count the reloads; the file watcher would add its own.
	p := &proc{t: t, cmd: exec.Command(sluiceBin, "run", "-c", path, "--watch=false"), exited: make(chan error, 1)}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// One goroutine reads the log and then reaps the process: Wait may
	// only be called once the pipe has been read to its end.
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
		p.exited <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		if !p.done {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("sluice log:\n%s", p.log())
		}
	})
	return p
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var s string
	for _, l := range p.lines {
		s += l + "\n"
	}
	return s
}

// waitLog waits for the n-th (1-based) log line matching re and returns
// its first submatch.
func (p *proc) waitLog(re *regexp.Regexp, n int) string {
	p.t.Helper()
	var got string
	waitFor(p.t, fmt.Sprintf("log line %d matching %s", n, re), func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		seen := 0
		for _, l := range p.lines {
			if m := re.FindStringSubmatch(l); m != nil {
				if seen++; seen == n {
					got = m[1]
					return true
				}
			}
		}
		return false
	})
	return got
}

func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// wait returns the exit code once the process has ended by itself.
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case err := <-p.exited:
		p.done = true
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			p.t.Fatal(err)
		}
		return 0
	case <-time.After(waitBound):
		p.t.Fatalf("sluice did not exit within %v", waitBound)
		return -1
	}
}

// stop sends SIGTERM and expects a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		p.t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
}

var adminUp = regexp.MustCompile(`admin endpoint up: address=(\S+)`)
