// Package decode turns loosely typed config maps into typed structs the way
// sluice wants everywhere: strict types, unknown keys reported, durations
// and byte sizes parsed, and every problem returned with its key path so
// that the caller can name it. pkg/config uses it for the file's sections
// and pkg/registry for each handler's options.
package decode

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"

	"github.com/sluice-dev/sluice/pkg/bytesize"
)

// FieldError is one problem at one key path, relative to what was decoded.
type FieldError struct {
	Key string // e.g. "listeners[0].idle_timeout"; "" for the value itself
	Msg string
}

func (e *FieldError) Error() string {
	if e.Key == "" {
		return e.Msg
	}
	return e.Key + ": " + e.Msg
}

// Into decodes input into out (a pointer to a struct with mapstructure tags)
// and returns every problem found, sorted by key. Unknown keys are errors
// that list the known ones.
func Into(input any, out any) (errs []*FieldError) {
	// A bug of the decoding library (it once panicked on a map key that
	// is not a string) must cost a config, never the process that
	// reloads it.
	defer func() {
		if p := recover(); p != nil {
			errs = []*FieldError{{Msg: fmt.Sprintf("cannot decode this document (%v); please report it", p)}}
		}
	}()
	input = stringKeys(input)
	for _, key := range dropDashKeys(input, "") {
		errs = append(errs, unknownKey(reflect.TypeOf(out), key))
	}
	var md mapstructure.Metadata
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(durationHook, bytesize.DecodeHook, integerHook),
		Metadata:   &md,
		Result:     out,
		TagName:    "mapstructure",
	})
	if err != nil {
		return []*FieldError{{Msg: err.Error()}}
	}
	if err := dec.Decode(input); err != nil {
		errs = flatten(err, errs)
	}
	for _, key := range md.Unused {
		errs = append(errs, unknownKey(reflect.TypeOf(out), key))
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Key < errs[j].Key })
	return errs
}

// stringKeys returns v with every map key a string. YAML allows keys of
// any type (0:, true:, [a]:); mapstructure assumes strings where it
// lists unused keys, and panics otherwise. A key written as 0 is the key
// "0" then, which no struct has, so it is reported as unknown by name.
func stringKeys(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = stringKeys(e)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[fmt.Sprint(k)] = stringKeys(e)
		}
		return m
	case []any:
		for i, e := range t {
			t[i] = stringKeys(e)
		}
		return t
	}
	return v
}

// dropDashKeys takes every key "-" out of v's maps and returns their
// paths: mapstructure would decode such a key into the fields tagged "-"
// (the ones it must skip) instead of calling it unknown.
func dropDashKeys(v any, path string) []string {
	var dropped []string
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if k == "-" {
				delete(t, k)
				dropped = append(dropped, p)
				continue
			}
			dropped = append(dropped, dropDashKeys(e, p)...)
		}
	case []any:
		for i, e := range t {
			dropped = append(dropped, dropDashKeys(e, fmt.Sprintf("%s[%d]", path, i))...)
		}
	}
	return dropped
}

// flatten walks mapstructure's tree of joined and nested errors and keeps
// the leaves, each with the name of the field it belongs to.
func flatten(err error, acc []*FieldError) []*FieldError {
	var de *mapstructure.DecodeError
	if errors.As(err, &de) && de == err {
		inner := de.Unwrap()
		if hasDecodeError(inner) {
			return flatten(inner, acc)
		}
		return append(acc, &FieldError{Key: de.Name(), Msg: message(inner)})
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			acc = flatten(e, acc)
		}
		return acc
	}
	if u := errors.Unwrap(err); u != nil && hasDecodeError(u) {
		return flatten(u, acc)
	}
	return append(acc, &FieldError{Msg: message(err)})
}

func hasDecodeError(err error) bool {
	var de *mapstructure.DecodeError
	return errors.As(err, &de)
}

// message rewrites mapstructure's Go-flavoured wording into words an
// operator reading a YAML file understands.
func message(err error) string {
	var ute *mapstructure.UnconvertibleTypeError
	if errors.As(err, &ute) {
		return fmt.Sprintf("expected %s, got %s %s", kindName(ute.Expected.Type()), yamlKind(ute.Value), quote(ute.Value))
	}
	var pe *mapstructure.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("expected %s, got %s: %v", kindName(pe.Expected.Type()), quote(pe.Value), pe.Err)
	}
	return err.Error()
}

func quote(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%v", v)
}

func yamlKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case int, int64, int32, uint64, uint32, uint, float64, float32:
		return "number"
	case []any:
		return "list"
	case map[string]any, map[any]any:
		return "mapping"
	}
	return reflect.TypeOf(v).String()
}

func kindName(t reflect.Type) string {
	switch t {
	case reflect.TypeOf(time.Duration(0)):
		return "a duration (e.g. 250ms, 5m)"
	case reflect.TypeOf(bytesize.Size(0)):
		return "a byte size (e.g. 65536, 64KiB, 1MB)"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	case reflect.Pointer:
		return kindName(t.Elem())
	}
	return t.String()
}

// MaxDuration is the longest duration any option accepts. A year is far
// beyond any sensible timeout, and far enough from time.Duration's own
// limit (about 292 years) that a deadline computed from it never
// overflows.
const MaxDuration = 365 * 24 * time.Hour

// durationSyntax is what time.ParseDuration accepts. A string that has
// this form but does not parse is too long for a time.Duration, which
// deserves its own message rather than "add a unit".
var durationSyntax = regexp.MustCompile(`^[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`)

// durationHook parses Go durations from strings and refuses bare numbers
// other than 0: "idle_timeout: 5" would otherwise mean five nanoseconds.
// Every duration is bounded above: one over MaxDuration is refused here,
// for every option of every handler at once. Negative ones are left to
// each option's check, which says what 0 means there.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeOf(time.Duration(0)) {
		return data, nil
	}
	switch v := data.(type) {
	case string:
		s := strings.TrimSpace(v)
		d, err := time.ParseDuration(s)
		switch {
		case err != nil && durationSyntax.MatchString(s):
			return nil, fmt.Errorf("duration %q is too long: the maximum is %s (365 days)", v, maxDurationText)
		case err != nil:
			return nil, fmt.Errorf("invalid duration %q: want a number with a unit, e.g. 250ms, 30s, 5m", v)
		case d > MaxDuration:
			return nil, fmt.Errorf("duration %q is too long: the maximum is %s (365 days)", v, maxDurationText)
		}
		return d, nil
	case int, int64, uint64, float64:
		if reflect.ValueOf(v).IsZero() {
			return time.Duration(0), nil
		}
		return nil, fmt.Errorf("invalid duration %v: add a unit, e.g. %vs", v, v)
	}
	return data, nil
}

const maxDurationText = "8760h"

// unknownKey names an unused key and, where the struct it belongs to can be
// found, the keys that would have been accepted there.
func unknownKey(root reflect.Type, key string) *FieldError {
	msg := "unknown key"
	if known := knownKeys(root, key); len(known) > 0 {
		msg += " (known: " + strings.Join(known, ", ") + ")"
	}
	return &FieldError{Key: key, Msg: msg}
}

// knownKeys follows the path of key (minus its last element) through the
// struct type and lists the mapstructure names found there.
func knownKeys(t reflect.Type, key string) []string {
	parts := strings.Split(key, ".")
	for _, p := range parts[:len(parts)-1] {
		if i := strings.IndexByte(p, '['); i >= 0 {
			p = p[:i]
		}
		t = deref(t)
		if t.Kind() != reflect.Struct {
			return nil
		}
		f, ok := fieldByTag(t, p)
		if !ok {
			return nil
		}
		t = f.Type
		for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
	}
	t = deref(t)
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	collectNames(t, &names)
	sort.Strings(names)
	return names
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("mapstructure"), ",")
		if tag[0] == name {
			return f, true
		}
		if len(tag) > 1 && tag[1] == "squash" {
			if sf, ok := fieldByTag(deref(f.Type), name); ok {
				return sf, true
			}
		}
	}
	return reflect.StructField{}, false
}

func collectNames(t reflect.Type, names *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := strings.Split(f.Tag.Get("mapstructure"), ",")
		if len(tag) > 1 && tag[1] == "squash" {
			collectNames(deref(f.Type), names)
			continue
		}
		if tag[0] == "-" || tag[0] == "" {
			continue
		}
		*names = append(*names, tag[0])
	}
}

// Split returns the problems in err one by one: the errors joined in it
// (errors.Join, or any error with Unwrap() []error, such as a config's
// Errors), err alone, or nothing for nil. It is the one place where a list
// of problems becomes one line each.
func Split(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
