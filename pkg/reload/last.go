package reload

import "time"

// Result is the outcome of the latest reload, whatever triggered it, as
// the admin endpoint's /status reports it.
type Result struct {
	Time    time.Time `json:"time"`
	Trigger string    `json:"trigger"` // signal, file, admin
	Result  string    `json:"result"`  // success, failure
	// Error is the failure, one problem a line; "" on success.
	Error string `json:"error,omitempty"`
	// SHA256 is the config running after the reload; "" on failure.
	SHA256 string `json:"sha256,omitempty"`
}

// Last returns the latest reload's result; ok is false before the first
// reload (the first config load is not a reload).
func (r *Reloader) Last() (res Result, ok bool) {
	p := r.last.Load()
	if p == nil {
		return Result{}, false
	}
	return *p, true
}

func (r *Reloader) record(trigger, result, sha string, err error) {
	res := &Result{Time: time.Now(), Trigger: trigger, Result: result, SHA256: sha}
	if err != nil {
		res.Error = err.Error()
	}
	r.last.Store(res)
}
