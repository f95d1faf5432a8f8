package reload

import (
	"context"

	"github.com/sluice-dev/sluice/pkg/config"
)

// Loader reads the config a reload applies. The default reads the
// reloader's file; an etcd source reads its key (see pkg/etcdsource).
// Whatever the loader, the parse, the transaction, the log lines and the
// metrics are the same.
type Loader func(ctx context.Context) (*config.Config, error)

// SetLoader makes every later Reload read its config through l.
func (r *Reloader) SetLoader(l Loader) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.loader = l
}

func (r *Reloader) load(ctx context.Context) (*config.Config, error) {
	if r.loader != nil {
		return r.loader(ctx)
	}
	return config.Load(r.path)
}
