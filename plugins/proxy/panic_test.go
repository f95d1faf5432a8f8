package proxy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/registry"
)

// replyBomb is a test middleware whose reply hook panics: a bug in a
// middleware's code that runs on the proxy's relay goroutine.
type replyBomb struct{}

func (replyBomb) WrapPacket(next chain.PacketHandler) chain.PacketHandler {
	return chain.PacketHandlerFunc(func(ctx context.Context, p *chain.Packet) error {
		if p.Flow.Value(replyBomb{}) == nil {
			p.Flow.SetValue(replyBomb{}, true)
			p.Flow.OnReply(func([]byte) { panic("bomb") })
		}
		return next.ServePacket(ctx, p)
	})
}

func init() { registry.Register("test-reply-bomb", func() any { return new(replyBomb) }) }

// TestUDPRelayPanicEndsOneFlow: a panic on the relay goroutine ends that
// flow and is logged; the process lives on and the listener still serves
// a new flow.
func TestUDPRelayPanicEndsOneFlow(t *testing.T) {
	up := newUDPEcho(t)
	h := newHarness(t)
	h.Apply(frontYAML("udp", "127.0.0.1:0", "0", "      - handler: test-reply-bomb\n"+proxyYAML(up.url())))
	front := h.Addr("front")

	c := dialUDP(t, front)
	// The hook runs once the reply is sent, so it may arrive or not.
	_, _ = exchange(c, "first", 500*time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for h.Open("front") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the flow whose relay panicked did not end")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(h.Log(), "proxy relay panicked; flow ended") {
		t.Errorf("the panic was not logged:\n%s", h.Log())
	}
	// A new flow from the same client works up to its own bombed reply:
	// the upstream hears it, so the listener and the proxy still serve.
	before := up.sourceCount()
	_, _ = exchange(c, "second", 500*time.Millisecond)
	if up.sourceCount() != before+1 {
		t.Fatalf("no new upstream socket after the panic: %d, was %d", up.sourceCount(), before)
	}
}
