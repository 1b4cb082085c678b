package natsauth

import "errors"

// ErrNoKeys is returned by Load for a directory without keys.
var ErrNoKeys = errors.New("no NATS keys")
