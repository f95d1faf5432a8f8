package supervisor

import (
	"testing"
	"time"
)

func TestWarnLimiter(t *testing.T) {
	var w warnLimiter
	if ok, held := w.allow(); !ok || held != 0 {
		t.Fatalf("first warning: %v, %d", ok, held)
	}
	for range 5 {
		if ok, _ := w.allow(); ok {
			t.Fatal("a second warning within warnEvery went through")
		}
	}
	w.mu.Lock()
	w.next = time.Now().Add(-time.Millisecond) // warnEvery has passed
	w.mu.Unlock()
	if ok, held := w.allow(); !ok || held != 5 {
		t.Errorf("after warnEvery: %v, held %d; want true, 5", ok, held)
	}
	var none *warnLimiter
	if ok, _ := none.allow(); !ok {
		t.Error("a nil limiter holds warnings back")
	}
}
