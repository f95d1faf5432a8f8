package reload

// Hook is told about every reload, whatever triggered it: ReloadBegin
// before the file is read, ReloadEnd with the outcome (nil when the
// config was applied or was unchanged). Both run with the reload lock
// held, so calls never interleave; they must not block for long. The
// first config applied by Start is not a reload and is not reported.
//
// sd_notify is the user: systemd is told RELOADING=1 and then READY=1
// around each reload (see pkg/sdnotify).
type Hook interface {
	ReloadBegin(trigger string)
	ReloadEnd(trigger string, err error)
}

// AddHook adds h to every later Reload.
func (r *Reloader) AddHook(h Hook) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hooks = append(r.hooks, h)
}

// begin tells the hooks that a reload starts and returns what tells them
// it ended.
func (r *Reloader) begin(trigger string) func(error) {
	for _, h := range r.hooks {
		h.ReloadBegin(trigger)
	}
	return func(err error) {
		for _, h := range r.hooks {
			h.ReloadEnd(trigger, err)
		}
	}
}
