package relay

import "testing"

func TestBufferPool(t *testing.T) {
	b := GetBuffer()
	if len(*b) != BufferSize {
		t.Fatalf("buffer size %d", len(*b))
	}
	PutBuffer(b)
	allocs := testing.AllocsPerRun(100, func() { PutBuffer(GetBuffer()) })
	if allocs > 0 {
		t.Errorf("pool allocates %.1f per get/put", allocs)
	}
	d := GetDatagramBuffer()
	if len(*d) != MaxDatagram {
		t.Fatalf("datagram buffer size %d", len(*d))
	}
	PutDatagramBuffer(d)
}
