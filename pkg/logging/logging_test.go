package logging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/config"
)

// syncBuffer is a bytes.Buffer safe for the concurrent test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := strings.Split(strings.TrimRight(s.b.String(), "\n"), "\n")
	s.b.Reset()
	if len(out) == 1 && out[0] == "" {
		return nil
	}
	return out
}

// decodeJSON returns the line's fields, or nil when it is not JSON.
func decodeJSON(line string) map[string]any {
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		return nil
	}
	return m
}

func TestFormatSwitchReachesDerivedLoggers(t *testing.T) {
	var buf syncBuffer
	root := New(config.Log{Level: "info", Format: "text"}, &buf)
	// Derived before the switch, as the supervisor's and every
	// listener's loggers are.
	sup := root.Named("supervisor")
	lis := sup.Named("listener").With("listener", "echo-tcp")
	conn := lis.With("conn_id", 7)
	reset := conn.ResetNamed("other")

	emit := func() {
		root.Info("root line")
		sup.Info("sup line")
		lis.Info("listener line")
		conn.Info("conn line", "bytes_in", 3)
		reset.Info("reset line")
	}

	emit()
	for _, line := range buf.lines() {
		if decodeJSON(line) != nil {
			t.Fatalf("text format wrote JSON: %s", line)
		}
	}

	Apply(root, config.Log{Level: "info", Format: "json"})
	emit()
	got := buf.lines()
	if len(got) != 5 {
		t.Fatalf("want 5 lines after the switch, got %d: %q", len(got), got)
	}
	want := []struct {
		module string
		msg    string
		fields map[string]any
	}{
		{"sluice", "root line", nil},
		{"sluice.supervisor", "sup line", nil},
		{"sluice.supervisor.listener", "listener line", map[string]any{"listener": "echo-tcp"}},
		{"sluice.supervisor.listener", "conn line", map[string]any{"listener": "echo-tcp", "conn_id": float64(7), "bytes_in": float64(3)}},
		{"other", "reset line", map[string]any{"listener": "echo-tcp", "conn_id": float64(7)}},
	}
	for i, w := range want {
		m := decodeJSON(got[i])
		if m == nil {
			t.Fatalf("line %d is not JSON after the switch: %s", i, got[i])
		}
		if m["@module"] != w.module || m["@message"] != w.msg {
			t.Errorf("line %d: module %v message %v, want %s %s", i, m["@module"], m["@message"], w.module, w.msg)
		}
		for k, v := range w.fields {
			if m[k] != v {
				t.Errorf("line %d: %s = %v, want %v", i, k, m[k], v)
			}
		}
	}

	// And back: the derived loggers follow every change, not only the first.
	Apply(root, config.Log{Level: "info", Format: "text"})
	emit()
	for _, line := range buf.lines() {
		if decodeJSON(line) != nil {
			t.Fatalf("switched back to text but got JSON: %s", line)
		}
		if !strings.Contains(line, "[INFO]") {
			t.Fatalf("not an hclog text line: %s", line)
		}
	}
}

func TestLevelFollowsApplyAndSurvivesFormatSwitch(t *testing.T) {
	var buf syncBuffer
	root := New(config.Log{Level: "info", Format: "text"}, &buf)
	lis := root.Named("listener").With("listener", "a")

	lis.Debug("hidden")
	if got := buf.lines(); len(got) != 0 {
		t.Fatalf("debug logged at info level: %q", got)
	}
	Apply(root, config.Log{Level: "debug", Format: "text"})
	if !lis.IsDebug() {
		t.Fatal("derived logger did not follow the level change")
	}
	lis.Debug("shown")
	if got := buf.lines(); len(got) != 1 {
		t.Fatalf("want the debug line, got %q", got)
	}

	// A format switch keeps the level.
	Apply(root, config.Log{Level: "debug", Format: "json"})
	if lvl := lis.GetLevel(); lvl != hclog.Debug {
		t.Fatalf("level after format switch = %v, want debug", lvl)
	}
	// Both at once.
	Apply(root, config.Log{Level: "error", Format: "text"})
	lis.Warn("hidden")
	lis.Error("shown")
	got := buf.lines()
	if len(got) != 1 || decodeJSON(got[0]) != nil || !strings.Contains(got[0], "shown") {
		t.Fatalf("want one text error line, got %q", got)
	}

	// SetLevel on a derived logger moves every logger, as hclog's
	// sub-loggers sharing their parent's level do.
	lis.SetLevel(hclog.Trace)
	if !root.IsTrace() {
		t.Fatal("SetLevel on a derived logger did not reach the root")
	}
}

func TestStandardWriterFollowsFormat(t *testing.T) {
	var buf syncBuffer
	root := New(config.Log{Level: "info", Format: "text"}, &buf)
	std := root.Named("admin").StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Error})
	Apply(root, config.Log{Level: "info", Format: "json"})
	std.Print("http: accept error")
	got := buf.lines()
	if len(got) != 1 {
		t.Fatalf("want one line, got %q", got)
	}
	m := decodeJSON(got[0])
	if m == nil || m["@level"] != "error" || m["@module"] != "sluice.admin" {
		t.Fatalf("standard logger line not JSON at error level from sluice.admin: %s", got[0])
	}
}

func TestApplyOnPlainHclogSetsLevel(t *testing.T) {
	l := hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &bytes.Buffer{}})
	Apply(l, config.Log{Level: "warn", Format: "json"})
	if l.GetLevel() != hclog.Warn {
		t.Fatalf("level = %v, want warn", l.GetLevel())
	}
}

// TestConcurrentSwitch logs from many goroutines through long-lived and
// fresh derived loggers while the format flips; -race checks the
// rebuilds, and every line must be whole, in one format or the other.
func TestConcurrentSwitch(t *testing.T) {
	var buf syncBuffer
	root := New(config.Log{Level: "info", Format: "text"}, &buf)
	lis := root.Named("listener").With("listener", "a")

	const writers, lines = 4, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				lis.With("conn_id", w*lines+i).Info("connection closed", "bytes_in", i)
			}
		}()
	}
	for i := range 50 {
		format := "text"
		if i%2 == 0 {
			format = "json"
		}
		Apply(root, config.Log{Level: "info", Format: format})
	}
	wg.Wait()

	got := buf.lines()
	if len(got) != writers*lines {
		t.Fatalf("want %d lines, got %d", writers*lines, len(got))
	}
	for _, line := range got {
		if m := decodeJSON(line); m != nil {
			if m["listener"] != "a" || m["@message"] != "connection closed" {
				t.Fatalf("bad JSON line: %s", line)
			}
			continue
		}
		if !strings.Contains(line, "[INFO]  sluice.listener: connection closed: ") || !strings.Contains(line, " listener=a") {
			t.Fatalf("bad text line: %s", line)
		}
	}
}

func ExampleApply() {
	var buf bytes.Buffer
	root := New(config.Log{Level: "info", Format: "text"}, &buf)
	lis := root.Named("listener").With("listener", "echo-tcp")
	Apply(root, config.Log{Level: "info", Format: "json"})
	lis.Info("listener up")
	m := decodeJSON(buf.String())
	fmt.Println(m["@module"], m["@message"], m["listener"])
	// Output: sluice.listener listener up echo-tcp
}
