package ratelimit

import (
	"context"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// dropLogEvery is how often a flow's dropped datagrams are logged at most:
// a client flooding the listener is worth a debug line a second, not one
// a datagram.
const dropLogEvery = time.Second

// WrapPacket lets each datagram through when its source address has a
// token (packets_per_second, burst) and drops it otherwise, without ever
// waiting: a datagram held back would stall every flow of the listener.
// A drop is not an error, so the flow goes on and a later datagram from
// the same client is served once its bucket has refilled; but a flow
// whose first datagram is dropped is rejected, as a connection over the
// limit is: a flow nothing got through on must not hold a place in the
// listener's flow table (one host sending from thousands of ports would
// fill it, and lock every new client out for idle_timeout).
func (h *Handler) WrapPacket(next chain.PacketHandler) chain.PacketHandler {
	t := h.state.packets
	if t == nil {
		return next // a ratelimit that limits nothing on datagrams
	}
	return chain.PacketHandlerFunc(func(ctx context.Context, p *chain.Packet) error {
		now := time.Now()
		if t.allow(p.Flow.Remote().Addr().Unmap(), now) {
			return next.ServePacket(ctx, p)
		}
		h.drop(p.Flow, now)
		if p.Flow.PacketsIn() == 1 {
			return rejectErrs[reasonPacketRate]
		}
		return nil
	})
}

// dropKey is the key of a flow's dropLog: one per handler, so that two
// ratelimits in a chain keep their own.
type dropKey struct{ h *Handler }

// dropLog is a flow's drops since its last debug line. It needs no lock:
// a flow's datagrams are served one at a time.
type dropLog struct {
	last    time.Time
	dropped int
}

// drop counts a dropped datagram and logs it at debug, at most every
// dropLogEvery per flow, with the number of drops the line stands for.
func (h *Handler) drop(f *chain.Flow, now time.Time) {
	h.rejected[reasonPacketRate].Inc()
	if !h.log.IsDebug() {
		return
	}
	d, _ := f.Value(dropKey{h}).(*dropLog)
	if d == nil {
		d = &dropLog{}
		f.SetValue(dropKey{h}, d)
	}
	d.dropped++
	if !d.last.IsZero() && now.Sub(d.last) < dropLogEvery {
		return
	}
	f.Logger().Debug("datagrams dropped", "reason", reasonPacketRate.String(), "dropped", d.dropped)
	d.last, d.dropped = now, 0
}
