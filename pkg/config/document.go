package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"go.yaml.in/yaml/v3"
)

// Structure limits, checked on the parsed document before viper sees it:
// viper flattens nested keys at a cost that grows with the square of the
// depth and more (a mapping nested 2,000 levels took 36 s), and it does
// so with the reload lock held.
const (
	// MaxDepth is how deeply mappings and lists may nest. sluice's own
	// schema needs 6 levels (listeners, a listener, chain, a handler,
	// per_ip, a value).
	MaxDepth = 32
	// maxValues bounds the values of a document once YAML aliases are
	// expanded: far more than 4 MiB of config holds as written.
	maxValues = 1 << 20
)

var (
	errTooDeep = fmt.Errorf("nested more than %d levels deep", MaxDepth)
	errTooMany = fmt.Errorf("more than %d values (after YAML aliases are expanded)", maxValues)
)

// document is what the file says before defaults and the environment
// apply.
type document struct {
	root map[string]any // nil when the file holds nothing
	// listeners is whether the file has a top-level listeners key.
	listeners bool
}

// parseDocument parses data as format and checks its shape: how deep it
// nests and how many values it holds. A file that holds nothing but
// comments and whitespace (or a bare null) is ErrEmpty. A top level that
// is not a mapping is left for viper to report.
func parseDocument(format string, data []byte) (*document, error) {
	var raw any
	var err error
	switch format {
	case "json":
		if len(bytes.TrimSpace(data)) == 0 {
			return nil, ErrEmpty
		}
		err = json.Unmarshal(data, &raw)
	case "toml":
		var m map[string]any
		err = toml.Unmarshal(data, &m)
		if err == nil && len(m) > 0 {
			raw = m
		}
	default:
		err = yaml.Unmarshal(data, &raw)
	}
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, ErrEmpty
	}
	n := 0
	if err := walk(raw, 1, &n); err != nil {
		return nil, err
	}
	doc := &document{}
	doc.root, _ = raw.(map[string]any)
	for k := range doc.root {
		if strings.EqualFold(k, "listeners") {
			doc.listeners = true
		}
	}
	return doc, nil
}

func walk(v any, depth int, n *int) error {
	*n++
	if *n > maxValues {
		return errTooMany
	}
	switch v := v.(type) {
	case map[string]any:
		if depth > MaxDepth {
			return errTooDeep
		}
		for _, e := range v {
			if err := walk(e, depth+1, n); err != nil {
				return err
			}
		}
	case map[any]any:
		if depth > MaxDepth {
			return errTooDeep
		}
		for _, e := range v {
			if err := walk(e, depth+1, n); err != nil {
				return err
			}
		}
	case []any:
		if depth > MaxDepth {
			return errTooDeep
		}
		for _, e := range v {
			if err := walk(e, depth+1, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// keepDropped puts back what viper's flattening dropped: keys with a null
// value ("admin:\n  adress:"), and mappings that hold only such keys or
// nothing. Decoding then reports an unknown one as it does any other: a
// typo must not pass because nothing follows it. Keys are matched the way
// viper matches them, without regard to case.
func keepDropped(raw, settings map[string]any) {
	for k, v := range raw {
		lk := strings.ToLower(k)
		cur, exists := settings[lk]
		if !exists {
			settings[lk] = v
			continue
		}
		rm, ok1 := v.(map[string]any)
		sm, ok2 := cur.(map[string]any)
		if ok1 && ok2 {
			keepDropped(rm, sm)
		}
	}
}

// shapeMessage words a structure error for the operator.
func shapeMessage(err error) string {
	switch {
	case errors.Is(err, ErrEmpty):
		return "config file is empty (nothing but comments or whitespace); write \"listeners: []\" to run with no listeners"
	case errors.Is(err, errTooDeep), errors.Is(err, errTooMany):
		return "config too complex: " + err.Error()
	}
	return parseMessage(err)
}
