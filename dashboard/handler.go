package dashboard

import (
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sessionmon/sessionmon/internal/chstore"
	"github.com/sessionmon/sessionmon/notify"
	"github.com/sessionmon/sessionmon/retention"
)

// handler serves every route; its methods are the pages, actions and API
// endpoints, one file each (verb+noun: showAlertList in alert_list.go).
type handler struct {
	cfg       Config
	store     *chstore.Store
	js        jetstream.JetStream
	retention retention.Config
	// notifier lists undeliverable alerts and redelivers them; nil when no
	// webhook is configured.
	notifier *notify.Notifier
	// eraser files erasure requests; nil disables the erasure form.
	eraser *retention.Eraser
	auth   *authenticator
	render *renderer
	// metrics count the requests (countRequests).
	metrics *Metrics
	logger  *slog.Logger
	now     func() time.Time
}
