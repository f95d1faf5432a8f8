package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// logPipeConfig is an echo listener on a Unix socket whose log handler
// writes a line per connection: nothing here needs sluice's log to find
// an address, since the log is what the tests hold back.
const logPipeConfig = `log:
  level: info
listeners:
  - name: echo
    network: unix
    address: %s
    chain:
      - handler: log
      - handler: echo
`

// startLogPipe runs sluice on logPipeConfig with stdout and stderr on a
// pipe the test reads only when it says so, and waits for its socket.
func startLogPipe(t *testing.T) (sock string, logs *os.File, cmd *exec.Cmd) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	dir := t.TempDir()
	sock = filepath.Join(dir, "echo.sock")
	path := writeConfig(t, dir, fmt.Sprintf(logPipeConfig, sock))
	rd, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(binary, "run", "-c", path, "--watch=false")
	cmd.Stdout, cmd.Stderr = wr, wr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = wr.Close()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = rd.Close()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return sock, rd, cmd
		}
		if time.Now().After(deadline) {
			t.Fatal("sluice's socket did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// roundTrips makes n connections to sock one after the other, each one
// echo and a close, all within d.
func roundTrips(sock string, n int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for i := range n {
		c, err := net.DialTimeout("unix", sock, time.Until(deadline))
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		_ = c.SetDeadline(deadline)
		err = echo(c, []byte("ping"))
		// The server's end of the connection, and its log line, come
		// after the client's close; wait for it, as a client that
		// reads to EOF would.
		if err == nil {
			_ = c.(*net.UnixConn).CloseWrite()
			_, err = io.Copy(io.Discard, c)
		}
		c.Close()
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
	}
	return nil
}

// TestLogOutputStalled: a log output that takes nothing (a full pipe
// nobody reads: journald stalled, a terminal on hold) does not hold a
// single connection. Lines that find 1 MiB waiting are dropped, and once
// the output takes lines again, one line says how many. Before, every
// connection whose access line found the pipe full stayed open, its
// descriptor and goroutine held, until the process ran out of them.
func TestLogOutputStalled(t *testing.T) {
	sock, logs, cmd := startLogPipe(t)
	// 64 KiB of pipe and 1 MiB of queue hold about 5,000 access lines.
	if err := roundTrips(sock, 8000, 60*time.Second); err != nil {
		t.Fatalf("with the log output stalled: %v", err)
	}
	// Each connection ended on the client's side with the echo's
	// half-close; its access line, and then its close, come after. A
	// connection held by its log line keeps its descriptor.
	fds := func() int {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid))
		return len(ents)
	}
	held := time.Now().Add(waitBound)
	for fds() > 100 {
		if time.Now().After(held) {
			t.Fatalf("sluice holds %d descriptors after 8,000 connections ended: connections wait for the log output", fds())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Now read, and keep reading: the lines held come out, then the
	// next connection's line after the notice of what was lost.
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		s := bufio.NewScanner(logs)
		for s.Scan() {
			lines <- s.Text()
		}
	}()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the log ended without saying lines were dropped")
			}
			if strings.Contains(l, "log lines dropped") {
				if !strings.Contains(l, "lines=") {
					t.Errorf("the notice does not say how many: %s", l)
				}
				return
			}
		case <-deadline:
			t.Fatal("no line said log lines were dropped")
		case <-time.After(200 * time.Millisecond):
			// The notice comes with the first write after the
			// drops: give it one.
			if err := roundTrips(sock, 1, 10*time.Second); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestLogOutputGone: a log reader that goes away (a `| tee` that died, a
// log shipper restarted) does not end sluice. Before, the next log line
// killed the process with SIGPIPE, and every connection with it.
func TestLogOutputGone(t *testing.T) {
	sock, logs, _ := startLogPipe(t)
	_ = logs.Close()
	// Every connection writes a line; with SIGPIPE the first of them
	// would end the process and the next connect would fail.
	if err := roundTrips(sock, 100, 30*time.Second); err != nil {
		t.Fatalf("after the log reader went: %v", err)
	}
}
