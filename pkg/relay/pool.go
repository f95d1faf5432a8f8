package relay

import "sync"

// BufferSize is the size of pooled copy buffers: large enough that bulk
// copies make few syscalls, small enough that thousands of busy
// connections stay cheap.
const BufferSize = 32 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, BufferSize); return &b }}

// GetBuffer takes a copy buffer from the shared pool. Return it with
// PutBuffer when done.
func GetBuffer() *[]byte { return bufPool.Get().(*[]byte) }

// PutBuffer returns a buffer taken with GetBuffer.
func PutBuffer(b *[]byte) { bufPool.Put(b) }

// MaxDatagram is the size of the buffer a datagram is read into: the
// largest UDP payload over IPv4 and IPv6 (without jumbograms) fits, so no
// datagram is ever silently truncated.
const MaxDatagram = 64 << 10

var datagramPool = sync.Pool{New: func() any { b := make([]byte, MaxDatagram); return &b }}

// GetDatagramBuffer takes a MaxDatagram-sized buffer from a shared pool.
// Code that reads datagrams from many sockets (one per proxied UDP flow)
// should take one only when a datagram is there to read, so that a quiet
// flow holds none.
func GetDatagramBuffer() *[]byte { return datagramPool.Get().(*[]byte) }

// PutDatagramBuffer returns a buffer taken with GetDatagramBuffer.
func PutDatagramBuffer(b *[]byte) { datagramPool.Put(b) }
