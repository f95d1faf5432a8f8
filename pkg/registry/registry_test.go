package registry_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/pkg/bytesize"
	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/registry"
)

type opts struct {
	Rate  int           `mapstructure:"rate"`
	Size  bytesize.Size `mapstructure:"size"`
	Label string        `mapstructure:"label"`
}

func (o *opts) ServeStream(context.Context, *chain.Conn) error { return nil }

func (o *opts) Validate() error {
	var errs []error
	if o.Rate < 0 {
		errs = append(errs, errors.New("rate must be >= 0"))
	}
	if o.Label == "bad" {
		errs = append(errs, errors.New("label must not be bad"))
	}
	return errors.Join(errs...)
}

func init() {
	registry.Register("reg-test", func() any { return new(opts) })
}

func TestNewDecodesStrictly(t *testing.T) {
	h, errs := registry.New("reg-test", "tcp", map[string]any{"rate": 5, "size": "64KiB", "label": "x"})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	o := h.(*opts)
	if o.Rate != 5 || o.Size != 64<<10 || o.Label != "x" {
		t.Errorf("decoded %+v", o)
	}
	h2, _ := registry.New("reg-test", "tcp", nil)
	if h2 == h {
		t.Error("New returned a shared instance")
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		opts map[string]any
		want []string
	}{
		{map[string]any{"rtae": 1}, []string{"rtae: unknown key (known: label, rate, size)"}},
		{map[string]any{"rate": "fast"}, []string{`rate: expected an integer, got string "fast"`}},
		{map[string]any{"size": "lots"}, []string{`size: invalid byte size "lots"`}},
		{map[string]any{"rate": -1, "label": "bad"}, []string{"rate must be >= 0", "label must not be bad"}},
	}
	for _, tt := range tests {
		_, errs := registry.New("reg-test", "tcp", tt.opts)
		if len(errs) != len(tt.want) {
			t.Errorf("%v: got %d errors %v, want %d", tt.opts, len(errs), errs, len(tt.want))
			continue
		}
		for i, w := range tt.want {
			if !strings.Contains(errs[i].Error(), w) {
				t.Errorf("%v: error %q does not contain %q", tt.opts, errs[i], w)
			}
		}
	}
	if _, errs := registry.New("nope", "tcp", nil); len(errs) != 1 || !strings.Contains(errs[0].Error(), `unknown handler "nope"`) {
		t.Errorf("unknown handler: %v", errs)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("duplicate Register did not panic")
		}
	}()
	registry.Register("reg-test", func() any { return new(opts) })
}

func TestRegisterNonHandlerPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("registering a non-handler did not panic")
		}
	}()
	registry.Register("reg-nothing", func() any { return new(int) })
}

func TestNames(t *testing.T) {
	found := false
	for _, n := range registry.Names() {
		found = found || n == "reg-test"
	}
	if !found {
		t.Error("Names misses reg-test")
	}
}

type valueHandler struct{}

func (valueHandler) ServeStream(context.Context, *chain.Conn) error { return nil }

func TestRegisterNonPointerPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("a factory returning a value did not panic")
		}
	}()
	registry.Register("reg-value", func() any { return valueHandler{} })
}
