package chain

import (
	"context"
	"errors"
	"fmt"
)

// The datagram side of the chain. UDP listeners do not force datagrams
// through net.Conn: each datagram is handed to the chain with the Flow
// (the per-client-address state) it belongs to.
//
// The contract a packet handler relies on:
//
//   - ServePacket runs on the listener's read loop. Datagrams of one flow
//     are served in order, one at a time, so per-flow state needs no lock
//     against ServePacket itself; different flows may be served from
//     different goroutines, so state shared across flows does.
//   - It must not block: a slow handler delays every flow of the
//     listener. Writing to a UDP socket is fine; waiting for a reply is
//     not (read replies in a goroutine, as proxy does, and send them with
//     Flow.Reply).
//   - The Packet and its Data are only valid during the call (both are
//     reused for the next datagram); copy what you keep.
//   - Return nil when the datagram was handled or deliberately dropped
//     (ratelimit drops this way and counts it itself). A non-nil error
//     ends the flow with that error, as a stream handler's error ends
//     its connection; the next datagram from the address starts a new
//     flow, on the listener's current chain.
//   - A flow keeps the chain generation it started on, like a stream
//     connection: after a reload it finishes on the old chain, until it
//     goes quiet or the old generation's drain timeout passes.
//   - Per-flow state lives on the Flow (SetValue/Value) and is released
//     in an OnEnd function. OnEnd is also where a middleware writes its
//     one record per flow: the counts are final there.
//
// The listener counts bytes_in for every datagram it reads; Flow.Reply
// counts bytes_out. A middleware that drops or rewrites datagrams needs
// not count anything.

// Packet is one datagram received on a UDP listener. Data is only valid
// during the call; a handler that keeps it must copy it.
type Packet struct {
	Data []byte
	Flow *Flow
}

// PacketHandler serves datagrams; a terminal handler (echo, proxy)
// implements it directly, a middleware's wrapper around the next one.
type PacketHandler interface {
	ServePacket(ctx context.Context, p *Packet) error
}

// PacketHandlerFunc adapts a function to PacketHandler.
type PacketHandlerFunc func(ctx context.Context, p *Packet) error

// ServePacket calls f.
func (f PacketHandlerFunc) ServePacket(ctx context.Context, p *Packet) error { return f(ctx, p) }

// PacketMiddleware wraps the rest of a datagram chain. WrapPacket runs
// once per chain build; per-flow work belongs in the returned handler.
type PacketMiddleware interface {
	WrapPacket(next PacketHandler) PacketHandler
}

// IsPacketTerminal reports whether h can end a datagram chain.
func IsPacketTerminal(h any) bool {
	_, ok := h.(PacketHandler)
	return ok
}

// IsPacketMiddleware reports whether h can stand before the end of a
// datagram chain.
func IsPacketMiddleware(h any) bool {
	_, ok := h.(PacketMiddleware)
	return ok
}

// CompilePacket folds handlers, in config order, into one PacketHandler:
// the last must be a packet terminal, all others packet middleware. Like
// Compile, the result is immutable and safe for concurrent use.
func CompilePacket(handlers []any) (PacketHandler, error) {
	if len(handlers) == 0 {
		return nil, errors.New("a chain needs at least one handler")
	}
	last, ok := handlers[len(handlers)-1].(PacketHandler)
	if !ok {
		return nil, ErrNotTerminal
	}
	h := last
	for i := len(handlers) - 2; i >= 0; i-- {
		mw, ok := handlers[i].(PacketMiddleware)
		if !ok {
			return nil, fmt.Errorf("chain[%d]: a terminal handler can only stand at the end of a chain", i)
		}
		h = mw.WrapPacket(h)
	}
	return h, nil
}
