package tlsterm

import "time"

// Status is the tls handler's part of /status.
type Status struct {
	Certificates []CertificateStatus `json:"certificates"`
}

// CertificateStatus is one served certificate.
type CertificateStatus struct {
	Cert  string   `json:"cert"`
	Key   string   `json:"key"`
	Names []string `json:"names"`
	// NotAfter is when it expires; Expiring is true within 7 days of it.
	NotAfter time.Time `json:"not_after"`
	Expiring bool      `json:"expiring"`
	// LoadedAt is when the pair now served was read: at the first load,
	// or when its files last changed.
	LoadedAt time.Time `json:"loaded_at"`
}

// Status reports the pairs served now.
func (h *Handler) Status() any {
	pairs := *h.store.cur.Load()
	st := Status{Certificates: make([]CertificateStatus, 0, len(pairs))}
	now := time.Now()
	for i, p := range pairs {
		st.Certificates = append(st.Certificates, CertificateStatus{
			Cert: h.store.files[i].Cert, Key: h.store.files[i].Key,
			Names: p.names, NotAfter: p.notAfter, Expiring: p.expiring(now), LoadedAt: p.loadedAt,
		})
	}
	return st
}
