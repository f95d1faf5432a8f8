package registry

// Spec is one chain entry as written in a config file: the handler's name
// and its options, which the handler decodes itself (see New). A
// listener's chain and a chain nested in a handler (a route's) are both
// lists of Specs, so that both are checked and built by the same code
// (ValidateChain, Build).
type Spec struct {
	Handler string         `mapstructure:"handler" json:"handler"`
	Options map[string]any `mapstructure:",remain" json:"options,omitempty"`
}

// PathError is a problem at a key path inside a chain, relative to where
// the chain is written: "chain[0].handler", or for a chain nested in a
// handler's options, "routes[2].chain[0].handler". Errors that a
// handler's checks return as PathErrors (a route reporting its nested
// chains) are joined onto the handler's own path, so that every error of
// every nested chain names its place in the file.
type PathError struct {
	Key string
	Msg string
}

func (e *PathError) Error() string {
	if e.Key == "" {
		return e.Msg
	}
	return e.Key + ": " + e.Msg
}
