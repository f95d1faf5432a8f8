// Package bytesize is the config type for byte counts: an integer, or a
// string with a unit ("64KiB", "1MB", "512 B") parsed by go-humanize, which
// knows both the SI (kB, MB = 1000^n) and IEC (KiB, MiB = 1024^n) units.
package bytesize

import (
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/dustin/go-humanize"
)

// Size is a number of bytes.
type Size int64

// Parse reads "65536", "64KiB" or "1MB".
func Parse(s string) (Size, error) {
	n, err := humanize.ParseBytes(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("invalid byte size %q: want an integer or a number with a unit, e.g. 64KiB, 1MB", s)
	}
	if n > math.MaxInt64 {
		return 0, fmt.Errorf("byte size %q is too large", s)
	}
	return Size(n), nil
}

// String formats with IEC units, as operators write them.
func (s Size) String() string { return humanize.IBytes(uint64(s)) }

// DecodeHook lets mapstructure fill Size fields from strings and numbers.
func DecodeHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeOf(Size(0)) {
		return data, nil
	}
	switch v := data.(type) {
	case string:
		return Parse(v)
	case int:
		return checkNonNegative(int64(v))
	case int64:
		return checkNonNegative(v)
	case uint64:
		if v > math.MaxInt64 {
			return nil, fmt.Errorf("byte size %d is too large", v)
		}
		return Size(v), nil
	case float64:
		if v != math.Trunc(v) {
			return nil, fmt.Errorf("byte size %v is not a whole number", v)
		}
		if v >= math.MaxInt64 {
			// int64(v) would wrap around to a negative number.
			return nil, fmt.Errorf("byte size %v is too large", v)
		}
		return checkNonNegative(int64(v))
	}
	return data, nil
}

func checkNonNegative(n int64) (Size, error) {
	if n < 0 {
		return 0, fmt.Errorf("byte size %d is negative", n)
	}
	return Size(n), nil
}
