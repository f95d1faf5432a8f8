package bytesize

import (
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	good := map[string]Size{"65536": 65536, "64KiB": 64 << 10, "1MB": 1_000_000, "1 MiB": 1 << 20, " 2kb ": 2000, "0": 0}
	for in, want := range good {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "lots", "-1KiB", "1 parsec"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
}

func TestDecodeHook(t *testing.T) {
	to := reflect.TypeOf(Size(0))
	for in, want := range map[any]Size{"1KiB": 1024, 5: 5, int64(7): 7, uint64(9): 9, float64(3): 3} {
		got, err := DecodeHook(reflect.TypeOf(in), to, in)
		if err != nil || got != want {
			t.Errorf("hook(%v) = %v, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []any{-1, 1.5, "x", 1e20, uint64(1) << 63} {
		if _, err := DecodeHook(reflect.TypeOf(in), to, in); err == nil {
			t.Errorf("hook(%v) accepted", in)
		}
	}
	// Other target types pass through untouched.
	if got, err := DecodeHook(reflect.TypeOf(""), reflect.TypeOf(""), "x"); err != nil || got != "x" {
		t.Errorf("pass-through: %v %v", got, err)
	}
}
