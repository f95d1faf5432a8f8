package chain

import "context"

// The datagram side of the chain. UDP listeners do not force datagrams
// through net.Conn: each datagram is handed to the chain with the flow
// (the per-client-address state) it belongs to.

// Packet is one datagram received on a UDP listener. Data is only valid
// during the call; a handler that keeps it must copy it.
type Packet struct {
	Data []byte
	Flow *Flow
}

// PacketHandler serves datagrams; a terminal handler (echo, proxy)
// implements it directly.
type PacketHandler interface {
	ServePacket(ctx context.Context, p *Packet) error
}

// PacketHandlerFunc adapts a function to PacketHandler.
type PacketHandlerFunc func(ctx context.Context, p *Packet) error

// ServePacket calls f.
func (f PacketHandlerFunc) ServePacket(ctx context.Context, p *Packet) error { return f(ctx, p) }

// PacketMiddleware wraps the rest of a datagram chain.
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
