package decode

import (
	"fmt"
	"math"
	"reflect"
	"time"

	"github.com/sluice-dev/sluice/pkg/bytesize"
)

// integerHook guards every integer option: mapstructure would truncate
// 1.5 to 1 and wrap 1e20 around to a negative number, so that
// "max_connections: 99999999999999999999" read as "must not be negative".
// A number that is not whole, or that does not fit the option's type, is
// refused here with that reason. Durations and byte sizes have hooks of
// their own.
func integerHook(from, to reflect.Type, data any) (any, error) {
	if to == reflect.TypeOf(time.Duration(0)) || to == reflect.TypeOf(bytesize.Size(0)) {
		return data, nil
	}
	// The range is [lo, end): end is the first value that does not fit,
	// exact as a float64 where the largest one that does is not.
	var lo, end float64
	var max uint64
	unsigned := false
	switch to.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := to.Bits()
		lo, end = -math.Ldexp(1, bits-1), math.Ldexp(1, bits-1)
		max = uint64(1)<<(bits-1) - 1
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		lo, end = 0, math.Ldexp(1, to.Bits())
		max = ^uint64(0) >> (64 - to.Bits())
		unsigned = true
	default:
		return data, nil
	}
	var f float64
	switch v := data.(type) {
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) || v != math.Trunc(v) {
			return nil, fmt.Errorf("expected an integer, got %v", v)
		}
		f = v
	case float32:
		return integerHook(from, to, float64(v))
	case int:
		return integerHook(from, to, int64(v))
	case int64:
		// Every int64 fits a 64-bit signed option; float64 would round
		// the largest ones up past it.
		if !unsigned && to.Bits() == 64 {
			return data, nil
		}
		f = float64(v)
	case uint64:
		// float64(v) may round up to 2^64, which is refused as too
		// large for every type only when v really is that large.
		f = float64(v)
		if unsigned && to.Bits() == 64 {
			return data, nil
		}
	default:
		return data, nil
	}
	switch {
	case f >= end:
		return nil, fmt.Errorf("%s is too large (at most %d)", numText(data), max)
	case f < lo:
		if lo == 0 {
			return nil, fmt.Errorf("must not be negative (got %s)", numText(data))
		}
		return nil, fmt.Errorf("%s is too small (at least %.0f)", numText(data), lo)
	}
	if v, ok := data.(float64); ok {
		// Whole and in range: hand mapstructure an integer.
		if unsigned {
			return uint64(v), nil
		}
		return int64(v), nil
	}
	return data, nil
}

// numText prints a number as the operator wrote it, without an exponent
// where it is whole.
func numText(v any) string {
	if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1e21 {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprint(v)
}
