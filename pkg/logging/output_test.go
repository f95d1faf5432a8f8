package logging

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-dev/sluice/pkg/config"
)

// TestOutputNeverWaits: with a pipe nobody reads, 4 MiB of log lines are
// taken at once; what does not fit is dropped and counted; once the pipe
// is read, the lines kept come out in order, whole, and the next line
// written is preceded by the notice of how many were lost.
func TestOutputNeverWaits(t *testing.T) {
	defer goleak.VerifyNone(t)
	rd, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	out := NewOutput(wr)
	log := New(config.Log{Level: "info", Format: "text"}, out)

	const n = 20000 // about 4 MiB of lines
	pad := strings.Repeat("x", 150)
	start := time.Now()
	for i := range n {
		log.Info("line", "i", i, "pad", pad)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("%d lines took %v to log with the output stalled", n, d)
	}
	dropped := out.Dropped()
	if dropped == 0 || dropped >= n {
		t.Fatalf("dropped %d of %d lines; want some, not all", dropped, n)
	}

	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		s := bufio.NewScanner(rd)
		for s.Scan() {
			lines <- s.Text()
		}
	}()
	next := 0 // the i the next line kept must carry
	deadline := time.After(20 * time.Second)
	for next < int(n-dropped) {
		select {
		case l := <-lines:
			want := fmt.Sprintf("i=%d ", next)
			if !strings.Contains(l, want) || !strings.HasSuffix(l, pad) {
				t.Fatalf("line %d: %q; want the line with %s, whole", next, l, want)
			}
			next++
		case <-deadline:
			t.Fatalf("only %d of the %d lines kept came out", next, n-dropped)
		}
	}
	// The lines kept were the first ones: the next one written is new,
	// and the notice comes before or with it.
	log.Info("after")
	var notice string
	for notice == "" {
		select {
		case l := <-lines:
			if strings.Contains(l, "log lines dropped") {
				notice = l
			}
		case <-deadline:
			t.Fatal("no notice of the lines dropped")
		}
	}
	if want := fmt.Sprintf("lines=%d", dropped); !strings.Contains(notice, want) {
		t.Errorf("notice %q; want %s", notice, want)
	}
	if !out.Close(5 * time.Second) {
		t.Error("Close did not finish with the output read")
	}
	_ = wr.Close()
	for range lines {
	}
}

// TestOutputReaderGone: a pipe whose reader has gone fails every write
// (EPIPE; the process ignores SIGPIPE as sluice run does, or the test
// binary's own handling applies, since the pipe is not fd 1 or 2): the
// lines are counted as dropped and Output goes on taking them.
func TestOutputReaderGone(t *testing.T) {
	defer goleak.VerifyNone(t)
	rd, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	rd.Close()
	defer wr.Close()
	out := NewOutput(wr)
	log := New(config.Log{Level: "info"}, out)
	for i := range 100 {
		log.Info("line", "i", i)
	}
	if !out.Close(5 * time.Second) {
		t.Fatal("Close did not finish")
	}
	if got := out.Dropped(); got != 100 {
		t.Errorf("dropped %d lines, want 100", got)
	}
	log.Info("after close") // dropped, never written
	if got := out.Dropped(); got != 101 {
		t.Errorf("dropped %d lines after Close, want 101", got)
	}
}

// TestOutputCloseFlushes: what was logged before Close is written by the
// time Close returns.
func TestOutputCloseFlushes(t *testing.T) {
	defer goleak.VerifyNone(t)
	var buf syncBuffer
	out := NewOutput(&buf)
	log := New(config.Log{Level: "info"}, out)
	for i := range 1000 {
		log.Info("line", "i", i)
	}
	if !out.Close(5 * time.Second) {
		t.Fatal("Close did not finish")
	}
	got := buf.lines()
	if len(got) != 1000 || !strings.Contains(got[999], "i=999") {
		t.Errorf("%d lines after Close, the last %q; want 1000", len(got), got[len(got)-1])
	}
	if out.Dropped() != 0 {
		t.Errorf("dropped %d", out.Dropped())
	}
}

// TestOutputCloseStalled: Close gives up after its timeout when the
// output takes nothing, rather than holding the exit.
func TestOutputCloseStalled(t *testing.T) {
	rd, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out := NewOutput(wr)
	line := []byte(strings.Repeat("x", 1000) + "\n")
	for range 200 { // more than the pipe holds
		_, _ = out.Write(line)
	}
	start := time.Now()
	if out.Close(200 * time.Millisecond) {
		t.Error("Close reported everything written to a pipe nobody reads")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	// Reading ends the writer goroutine: nothing leaks.
	rd.Close()
	_ = wr.Close()
	goleak.VerifyNone(t)
}
