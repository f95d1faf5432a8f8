package admin

// SourceStatus is where the running config comes from, in /status.
type SourceStatus struct {
	Kind string `json:"kind"` // file, etcd
	// URL is the config file's path, or the etcd URL.
	URL string `json:"url"`
	// Key, Revision: the etcd key, and the revision that wrote the
	// running config (0 while unknown, as after a start from the cache).
	Key      string `json:"key,omitempty"`
	Revision int64  `json:"revision,omitempty"`
	// Connected is whether sluice is in touch with the source now;
	// always true for a file.
	Connected bool `json:"connected"`
}

func (a *Admin) sourceStatus() SourceStatus {
	if a.source != nil {
		return a.source()
	}
	st := SourceStatus{Kind: "file", Connected: true}
	if cfg := a.sup.Config(); cfg != nil {
		st.URL = cfg.Path
	}
	return st
}
