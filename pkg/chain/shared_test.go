package chain

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type testKey struct{ name string }

func TestSharedHandsOverUntilLastRelease(t *testing.T) {
	s := NewShared()
	made := 0
	create := func() any { made++; return new(int) }
	a := s.Acquire(testKey{"l"}, create).(*int)
	b := s.Acquire(testKey{"l"}, create).(*int) // the next chain's handler
	if a != b || made != 1 {
		t.Fatalf("second Acquire made a new value (made %d)", made)
	}
	if c := s.Acquire(testKey{"other"}, create).(*int); c == a || made != 2 {
		t.Fatal("another key shares the value")
	}
	if s.Acquire("l", create) == any(a) {
		t.Fatal("a key of another type shares the value")
	}
	s.Release(testKey{"l"})
	if d := s.Acquire(testKey{"l"}, create).(*int); d != a {
		t.Fatal("value forgotten while a holder was left")
	}
	s.Release(testKey{"l"})
	s.Release(testKey{"l"})
	if e := s.Acquire(testKey{"l"}, create).(*int); e == a {
		t.Fatal("value kept after its last release")
	}
	var nilStore *Shared
	if nilStore.Acquire(testKey{"l"}, create) == nilStore.Acquire(testKey{"l"}, create) {
		t.Fatal("a nil store shared a value")
	}
	nilStore.Release(testKey{"l"})
}

func TestRegisterReturnsTheCollectorAlreadyThere(t *testing.T) {
	reg := prometheus.NewRegistry()
	wrapped := func(listener string) prometheus.Registerer {
		return prometheus.WrapRegistererWith(prometheus.Labels{"listener": listener}, reg)
	}
	newVec := func() *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_test_total", Help: "h"}, []string{"reason"})
	}
	first, err := Register(wrapped("a"), newVec())
	if err != nil {
		t.Fatal(err)
	}
	first.WithLabelValues("x").Inc()
	// A reload builds the handler again: it must count on the same series.
	again, err := Register(wrapped("a"), newVec())
	if err != nil || again != first {
		t.Fatalf("Register after reload = %p, %v; want the first vector %p", again, err, first)
	}
	again.WithLabelValues("x").Inc()
	other, err := Register(wrapped("b"), newVec())
	if err != nil {
		t.Fatal(err)
	}
	other.WithLabelValues("x").Inc()
	want := `
# HELP sluice_test_total h
# TYPE sluice_test_total counter
sluice_test_total{listener="a",reason="x"} 2
sluice_test_total{listener="b",reason="x"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sluice_test_total"); err != nil {
		t.Error(err)
	}
	// A clash of descriptions is an error, not a panic.
	clash := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_test_total", Help: "other help"}, []string{"reason"})
	if _, err := Register(wrapped("c"), clash); err == nil {
		t.Error("a collector with another help text was registered under the same name")
	}
	if v, err := Register[*prometheus.CounterVec](nil, newVec()); err != nil || v == nil {
		t.Errorf("Register(nil) = %v, %v", v, err)
	}
}
