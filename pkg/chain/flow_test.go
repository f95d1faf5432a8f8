package chain

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func testFlow(reply func([]byte, netip.AddrPort) (int, error), release func(*Flow)) *Flow {
	return NewFlow(FlowConfig{
		ID:          7,
		Listener:    "u",
		Remote:      netip.MustParseAddrPort("127.0.0.1:5000"),
		Local:       &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7001},
		IdleTimeout: time.Minute,
		Logger:      hclog.NewNullLogger(),
		Reply:       reply,
		Release:     release,
	})
}

func TestFlowEndRunsOnceInReverseOrder(t *testing.T) {
	var order []string
	var released int
	f := testFlow(nil, func(f *Flow) {
		released++
		order = append(order, "release")
		if f.Err() == nil || f.BytesIn() != 3 {
			t.Errorf("release saw err %v, bytes in %d", f.Err(), f.BytesIn())
		}
	})
	f.AddIn(3)
	f.OnEnd(func(*Flow) { order = append(order, "outer") })
	f.OnEnd(func(f *Flow) {
		order = append(order, "inner")
		f.Close(errors.New("again")) // from inside OnEnd: ignored
	})
	boom := errors.New("boom")
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.Close(boom)
		}()
	}
	wg.Wait()
	<-f.Done()
	if got := strings.Join(order, ","); got != "inner,outer,release" {
		t.Fatalf("order %s", got)
	}
	if released != 1 || !errors.Is(f.Err(), boom) || !f.Ended() {
		t.Fatalf("released %d, err %v, ended %v", released, f.Err(), f.Ended())
	}
	late := false
	f.OnEnd(func(*Flow) { late = true })
	if !late {
		t.Fatal("OnEnd after the end did not run at once")
	}
}

func TestFlowReplyCountsAndTouches(t *testing.T) {
	var sent []string
	f := testFlow(func(b []byte, to netip.AddrPort) (int, error) {
		sent = append(sent, to.String()+" "+string(b))
		return len(b), nil
	}, nil)
	time.Sleep(20 * time.Millisecond)
	if f.IdleFor() < 20*time.Millisecond {
		t.Fatalf("idle for %v after 20ms", f.IdleFor())
	}
	if _, err := f.Reply([]byte("hey")); err != nil {
		t.Fatal(err)
	}
	// The mark is the time of the reply, at least 20ms after the start
	// (comparing IdleFor to a bound would race a slow machine).
	if last := time.Duration(f.last.Load()); last < 20*time.Millisecond {
		t.Fatalf("a reply did not mark the flow active (last activity %v after start)", last)
	}
	if f.BytesOut() != 3 || len(sent) != 1 || sent[0] != "127.0.0.1:5000 hey" {
		t.Fatalf("bytes out %d, sent %q", f.BytesOut(), sent)
	}
	if f.RemoteAddr().String() != "127.0.0.1:5000" || f.LocalAddr().String() != "127.0.0.1:7001" {
		t.Fatalf("addresses %v %v", f.RemoteAddr(), f.LocalAddr())
	}
}

func TestFlowValues(t *testing.T) {
	f := testFlow(nil, nil)
	type key struct{}
	if f.Value(key{}) != nil {
		t.Fatal("value before set")
	}
	f.SetValue(key{}, 1)
	f.SetValue("other", 2)
	f.SetValue(key{}, 3)
	if f.Value(key{}) != 3 || f.Value("other") != 2 {
		t.Fatalf("values %v %v", f.Value(key{}), f.Value("other"))
	}
}

type tagPacket string

func (t tagPacket) WrapPacket(next PacketHandler) PacketHandler {
	return PacketHandlerFunc(func(ctx context.Context, p *Packet) error {
		p.Data = append([]byte(string(t)), p.Data...)
		return next.ServePacket(ctx, p)
	})
}

type endPacket struct{ got *string }

func (e endPacket) ServePacket(_ context.Context, p *Packet) error {
	*e.got = string(p.Data)
	return nil
}

func TestCompilePacket(t *testing.T) {
	var got string
	h, err := CompilePacket([]any{tagPacket("a"), tagPacket("b"), endPacket{&got}})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.ServePacket(context.Background(), &Packet{Data: []byte("!")}); err != nil {
		t.Fatal(err)
	}
	if got != "ba!" {
		t.Fatalf("middleware ran out of order: %q", got)
	}
	if _, err := CompilePacket([]any{endPacket{&got}, endPacket{&got}}); err == nil {
		t.Fatal("a terminal before the end was accepted")
	}
	if _, err := CompilePacket([]any{tagPacket("a")}); !errors.Is(err, ErrNotTerminal) {
		t.Fatalf("chain without terminal: %v", err)
	}
}
