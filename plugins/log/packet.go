package log

import (
	"context"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// flowKey marks the flows this handler has seen: one key per handler, so
// that two log handlers in a chain each write their record.
type flowKey struct{ h *Handler }

// WrapPacket records each flow once, when it ends, and with payload: true
// logs every datagram either way at trace. The record is written from the
// flow's OnEnd, where its counts are final; registered on the flow's
// first datagram, it runs after the OnEnd functions of the handlers after
// this one (proxy closing its upstream socket).
func (h *Handler) WrapPacket(next chain.PacketHandler) chain.PacketHandler {
	return chain.PacketHandlerFunc(func(ctx context.Context, p *chain.Packet) error {
		f := p.Flow
		if f.Value(flowKey{h}) == nil {
			h.watch(f)
		}
		if h.Payload && h.log.IsTrace() {
			traceData(f.Logger().Named(Name), "in", p.Data)
		}
		return next.ServePacket(ctx, p)
	})
}

// watch sets up the flow's record and, with payload: true, the trace of
// what is sent back to the client.
func (h *Handler) watch(f *chain.Flow) {
	f.SetValue(flowKey{h}, struct{}{})
	f.OnEnd(h.recordFlow)
	if h.Payload {
		f.OnReply(func(b []byte) {
			if h.log.IsTrace() {
				traceData(f.Logger().Named(Name), "out", b)
			}
		})
	}
}

// recordFlow writes the flow's one record. Bytes are datagram payload
// bytes (no UDP or IP headers), as the listener counts them.
func (h *Handler) recordFlow(f *chain.Flow) {
	if h.log.GetLevel() > h.level || h.SkipEmpty && empty(f.BytesIn(), f.BytesOut(), f.Err()) {
		return
	}
	args := make([]any, 0, 12)
	args = append(args,
		"duration", time.Since(f.Start()),
		"bytes_in", f.BytesIn(),
		"bytes_out", f.BytesOut(),
		"packets_in", f.PacketsIn(),
		"packets_out", f.PacketsOut(),
	)
	if err := f.Err(); err != nil {
		args = append(args, "error", err)
	}
	f.Logger().Named(Name).Log(h.level, "flow closed", args...)
}
