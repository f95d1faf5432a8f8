package chain_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// tag is a middleware that records its name on the way in and out.
type tag struct {
	name  string
	trace *[]string
}

func (m tag) WrapStream(next chain.StreamHandler) chain.StreamHandler {
	return chain.StreamHandlerFunc(func(ctx context.Context, c *chain.Conn) error {
		*m.trace = append(*m.trace, m.name+">")
		err := next.ServeStream(ctx, c)
		*m.trace = append(*m.trace, "<"+m.name)
		return err
	})
}

type end struct{ trace *[]string }

func (e end) ServeStream(context.Context, *chain.Conn) error {
	*e.trace = append(*e.trace, "end")
	return errors.New("done")
}

type closer struct{ closed *int }

func (c closer) Close() error { *c.closed++; return nil }

func TestCompileOrder(t *testing.T) {
	var trace []string
	h, err := chain.Compile([]any{tag{"a", &trace}, tag{"b", &trace}, end{&trace}})
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	err = h.ServeStream(context.Background(), chain.NewConn(a, 1, "l", 0, nil))
	if err == nil || err.Error() != "done" {
		t.Fatalf("terminal's error not returned: %v", err)
	}
	if got := strings.Join(trace, " "); got != "a> b> end <b <a" {
		t.Errorf("order = %q, want config order in, reverse out", got)
	}
}

func TestCompileRejects(t *testing.T) {
	var trace []string
	if _, err := chain.Compile(nil); err == nil {
		t.Error("empty chain compiled")
	}
	if _, err := chain.Compile([]any{tag{"a", &trace}}); !errors.Is(err, chain.ErrNotTerminal) {
		t.Errorf("middleware-only chain: %v", err)
	}
	if _, err := chain.Compile([]any{end{&trace}, end{&trace}}); err == nil || !strings.Contains(err.Error(), "chain[0]") {
		t.Errorf("terminal before the end: %v", err)
	}
}

func TestCloseAll(t *testing.T) {
	n := 0
	if err := chain.CloseAll([]any{closer{&n}, end{}, closer{&n}}); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("closed %d handlers, want 2", n)
	}
}

func TestConnCountsAndWrap(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := chain.NewConn(a, 7, "l", 0, nil)
	if c.Wrapped() || c.Raw() != a {
		t.Fatal("fresh conn reports wrapped")
	}
	c.AddIn(3)
	c.AddOut(5)
	c.AddIn(1)
	if c.BytesIn() != 4 || c.BytesOut() != 5 || c.ID() != 7 || c.Listener() != "l" {
		t.Errorf("counters/ids wrong: in=%d out=%d id=%d", c.BytesIn(), c.BytesOut(), c.ID())
	}
	c.Conn = struct{ net.Conn }{a}
	if !c.Wrapped() {
		t.Error("wrapped conn not reported")
	}
}

func TestAnnotationsKeepOrderLastValueAndResetOnInit(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := chain.NewConn(a, 1, "l", 0, hclog.NewNullLogger())
	c.Annotate("route", "0")
	c.Annotate("sni", "a.example")
	c.Annotate("route", "web")
	got := fmt.Sprint(c.Annotations())
	if want := "[route web sni a.example]"; got != want {
		t.Fatalf("annotations %s, want %s", got, want)
	}
	c.Init(a, 2, "l", 0, hclog.NewNullLogger())
	if n := len(c.Annotations()); n != 0 {
		t.Fatalf("a re-initialised Conn kept %d annotation values", n)
	}
}
