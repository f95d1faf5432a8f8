package echo

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/registry"
)

func TestRejectsOptions(t *testing.T) {
	if _, errs := registry.New("echo", "tcp", map[string]any{"loud": true}); len(errs) != 1 || !strings.Contains(errs[0].Error(), "loud: unknown key") {
		t.Errorf("errs = %v", errs)
	}
}

func TestEchoHalfCloseAndCounts(t *testing.T) {
	c, res, _ := run(t, 0, false)
	payload := make([]byte, 1<<20+123)
	rand.Read(payload)
	go func() {
		c.Write(payload)
		c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("got %d bytes (err %v), want %d intact", len(got), err, len(payload))
	}
	r := <-res
	if r.err != nil || r.in != int64(len(payload)) || r.out != int64(len(payload)) {
		t.Errorf("result %+v, want nil error and %d bytes each way", r, len(payload))
	}
}

func TestEchoIdleTimeout(t *testing.T) {
	c, res, _ := run(t, 100*time.Millisecond, false)
	io.WriteString(c, "x")
	io.ReadFull(c, make([]byte, 1))
	r := <-res
	if !errors.Is(r.err, chain.ErrIdleTimeout) {
		t.Errorf("err = %v, want idle timeout", r.err)
	}
}

// TestNoAllocPerRead: a long stream of small writes costs no allocation
// per read once the connection runs.
func TestNoAllocPerRead(t *testing.T) {
	c, _, _ := run(t, 0, false)
	msg := []byte("ping")
	buf := make([]byte, 4)
	roundtrip := func() {
		c.Write(msg)
		io.ReadFull(c, buf)
	}
	roundtrip()
	// The measured loop includes the client's own work; echo's share of
	// allocations must be zero, so the whole is well below one per op.
	if a := testing.AllocsPerRun(200, roundtrip); a >= 1 {
		t.Errorf("%.2f allocations per roundtrip", a)
	}
}
