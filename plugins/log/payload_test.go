package log

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/chain"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// payloadLines runs reads and writes of each message through a payloadConn
// logging JSON at level, and returns the "data" records.
func payloadLines(t *testing.T, level hclog.Level, msgs ...[]byte) []map[string]any {
	t.Helper()
	var out lockedBuffer
	base := hclog.New(&hclog.LoggerOptions{Level: level, JSONFormat: true, Output: &out})
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	c := chain.NewConn(server, 1, "l", 0, base)
	pc := newPayloadConn(server, base, c)

	for _, m := range msgs {
		done := make(chan error, 1)
		go func() {
			_, err := client.Write(m)
			done <- err
		}()
		buf := make([]byte, len(m))
		if _, err := io.ReadFull(pc, buf); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		go func() {
			_, err := io.ReadFull(client, make([]byte, len(m)))
			done <- err
		}()
		if _, err := pc.Write(buf); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out.b.String()), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		recs = append(recs, r)
	}
	return recs
}

func TestPayloadIsLoggedTruncatedAtTrace(t *testing.T) {
	long := []byte(strings.Repeat("é", 100)) // 200 bytes: the cut falls inside a rune
	recs := payloadLines(t, hclog.Trace, []byte("hello\n"), long, []byte{0xff, 0x00, 0xfe})
	if len(recs) != 6 {
		t.Fatalf("%d records, want 6 (a read and a write per message): %v", len(recs), recs)
	}
	tests := []struct {
		i         int
		direction string
		key, data string
		length    float64
		truncated bool
	}{
		{0, "in", "data", "hello\n", 6, false},
		{1, "out", "data", "hello\n", 6, false},
		{2, "in", "data", strings.Repeat("é", 64), 200, true},
		{4, "in", "data_hex", "ff00fe", 3, false},
		{5, "out", "data_hex", "ff00fe", 3, false},
	}
	for _, tt := range tests {
		r := recs[tt.i]
		if r["@message"] != "data" || r["direction"] != tt.direction || r[tt.key] != tt.data ||
			r["len"] != tt.length || r["truncated"] != tt.truncated || r["@level"] != "trace" {
			t.Errorf("record %d = %v\nwant direction=%s %s=%q len=%v truncated=%v", tt.i, r, tt.direction, tt.key, tt.data, tt.length, tt.truncated)
		}
	}
	if d := recs[2]["data"].(string); len(d) > PayloadLimit {
		t.Errorf("logged %d bytes of payload; the limit is %d", len(d), PayloadLimit)
	}
}

func TestPayloadIsSilentAboveTrace(t *testing.T) {
	if recs := payloadLines(t, hclog.Debug, []byte("hello")); len(recs) != 0 {
		t.Fatalf("payload logged at debug: %v", recs)
	}
}
