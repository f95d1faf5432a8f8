package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/reload"
	"github.com/sluice-dev/sluice/pkg/supervisor"
	"github.com/sluice-dev/sluice/pkg/version"
)

// routes builds the endpoint's handler. Method patterns make the mux
// answer a wrong method with 405 and an Allow header; a GET pattern also
// serves HEAD.
func (a *Admin) routes(m *metrics.Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.index)
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /status", a.status)
	// Open connections' bytes are added to the counters at scrape time,
	// not per read: see supervisor.FlushBytes.
	gather := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		a.sup.FlushBytes()
		return m.Registry.Gather()
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gather, promhttp.HandlerOpts{
		ErrorLog:      a.errLog,
		ErrorHandling: promhttp.ContinueOnError,
		// Scrapes are cheap, but not free: concurrent ones share one
		// collection, and a runaway scraper gets 503s rather than piling
		// up goroutines.
		CoalesceGather:      true,
		MaxRequestsInFlight: 8,
	}))
	mux.HandleFunc("POST /reload", a.reload)
	mux.HandleFunc("POST /upgrade", a.upgrade)
	// A web page the operator visits must not be able to make their
	// browser POST /reload to a loopback endpoint; curl, which sends no
	// Origin or Sec-Fetch-Site header, is unaffected.
	return http.NewCrossOriginProtection().Handler(mux)
}

const indexText = `sluice admin endpoint

GET  /healthz   liveness: 200 ok (503 draining while shutting down)
GET  /status    running config, listeners and last reload, as JSON
GET  /metrics   Prometheus metrics
POST /reload    reload the config file, like SIGHUP; JSON result
POST /upgrade   start the binary on disk with every socket, like SIGUSR2; JSON result
`

func (a *Admin) index(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(indexText))
}

func (a *Admin) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if a.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("draining"))
		return
	}
	_, _ = w.Write([]byte("ok"))
}

// Status is the body of GET /status.
type Status struct {
	// PID is this process's: an upgrade changes it.
	PID           int       `json:"pid"`
	Version       string    `json:"version"`
	Commit        string    `json:"commit"`
	GoVersion     string    `json:"go_version"`
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	// Draining is true once shutdown has begun.
	Draining bool         `json:"draining"`
	Config   ConfigStatus `json:"config"`
	Source   SourceStatus `json:"source"`
	// LastReload is null until the first reload.
	LastReload *reload.Result              `json:"last_reload"`
	Listeners  []supervisor.ListenerStatus `json:"listeners"`
}

// ConfigStatus identifies the running config.
type ConfigStatus struct {
	Path     string    `json:"path"`
	SHA256   string    `json:"sha256"`
	LoadedAt time.Time `json:"loaded_at"`
}

func (a *Admin) status(w http.ResponseWriter, _ *http.Request) {
	st := Status{
		PID:           os.Getpid(),
		Version:       version.Version,
		Commit:        version.Commit,
		GoVersion:     version.GoVersion(),
		StartedAt:     a.started,
		UptimeSeconds: time.Since(a.started).Round(time.Millisecond).Seconds(),
		Draining:      a.draining.Load(),
		Listeners:     a.sup.Status(),
	}
	if cfg := a.sup.Config(); cfg != nil {
		st.Config = ConfigStatus{Path: cfg.Path, SHA256: cfg.Hash, LoadedAt: cfg.LoadedAt}
	}
	st.Source = a.sourceStatus()
	if last, ok := a.reloader.Last(); ok {
		st.LastReload = &last
	}
	writeJSON(w, http.StatusOK, st)
}

// ReloadResponse is the body of POST /reload.
type ReloadResponse struct {
	Result string `json:"result"` // success, failure
	// What changed, by listener name: always lists, empty on failure, so
	// that a script can iterate without a null check. Unchanged means the
	// file's content matched the running config and nothing was done.
	Unchanged bool     `json:"unchanged"`
	Added     []string `json:"added"`
	Removed   []string `json:"removed"`
	Changed   []string `json:"changed"`
	// SHA256 is the config running after a successful reload.
	SHA256 string `json:"sha256,omitempty"`
	// On failure: one problem an entry, each naming its key path.
	Errors []string `json:"errors,omitempty"`
}

// reload runs the same reload as SIGHUP or a file save. It is detached
// from the request's context: a client that hangs up must not cut a
// reload short halfway. The reload may move or stop this very endpoint;
// that is safe because retiring a server never waits for its requests.
func (a *Admin) reload(w http.ResponseWriter, r *http.Request) {
	var (
		sum supervisor.Summary
		err error
	)
	if a.draining.Load() {
		// Shutdown has begun, or is about to (the supervisor may not
		// know yet): nothing is applied, and it is no failed reload.
		err = supervisor.ErrClosed
	} else {
		sum, err = a.reloader.Reload(context.WithoutCancel(r.Context()), "admin")
	}
	if err != nil {
		writeJSON(w, reloadStatus(err), ReloadResponse{
			Result: "failure", Added: []string{}, Removed: []string{}, Changed: []string{},
			Errors: errorLines(err),
		})
		return
	}
	resp := ReloadResponse{
		Result:    "success",
		Unchanged: sum.Unchanged,
		Added:     nonNil(sum.Added),
		Removed:   nonNil(sum.Removed),
		Changed:   nonNil(sum.Changed),
	}
	if cfg := a.sup.Config(); cfg != nil {
		resp.SHA256 = cfg.Hash
	}
	writeJSON(w, http.StatusOK, resp)
}

// reloadStatus maps a failed reload to a status code: 422 when the file
// is invalid, 503 when sluice is shutting down, and 500 when a valid
// config could not be applied (an address in use, say).
func reloadStatus(err error) int {
	var ce config.Errors
	switch {
	case errors.As(err, &ce):
		return http.StatusUnprocessableEntity
	case errors.Is(err, supervisor.ErrClosed), errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// errorLines splits a reload error into its problems: each of a
// config.Errors, else each line of the message.
func errorLines(err error) []string {
	var ce config.Errors
	if errors.As(err, &ce) {
		out := make([]string, len(ce))
		for i, e := range ce {
			out[i] = e.Error()
		}
		return out
	}
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
