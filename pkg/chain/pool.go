package chain

import "sync"

// BufferSize is the size of pooled copy buffers: large enough that bulk
// copies make few syscalls, small enough that thousands of busy
// connections stay cheap.
const BufferSize = 32 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, BufferSize); return &b }}

// GetBuffer takes a copy buffer from the shared pool. Return it with
// PutBuffer when the copy loop ends.
func GetBuffer() *[]byte { return bufPool.Get().(*[]byte) }

// PutBuffer returns a buffer taken with GetBuffer.
func PutBuffer(b *[]byte) { bufPool.Put(b) }
