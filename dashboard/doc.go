// Package dashboard is sessionmon's web application for the security team:
// the overview, alert triage, subject and session timelines, dead letters,
// webhook deliveries, retention and erasure, and the same data as a JSON API
// under /api/v1 (documented in openapi.yaml).
//
// It is a security product itself, so its own sessions follow the practices
// sessionmon checks in other apps: server-side sessions with idle and
// absolute timeouts, a fresh session id at login, __Host- cookies, CSRF
// tokens on every state-changing request, re-authentication before
// sensitive actions, a strict Content-Security-Policy and an append-only
// audit log. Session and API token records in NATS carry a MAC made with a
// key NATS never sees (record_mac.go), sign-in attempts are counted before
// the password is checked (ratelimit.go), and request bodies are bounded
// (bodylimit.go). It publishes its own sign-ins, sessions and sensitive actions
// through the sessionmon SDK as the app "sessionmon-dashboard".
//
// Layout: server.go registers every route; handler.go holds the handler's
// dependencies; one file per page or action (alert_list.go, alert_status.go,
// session_show.go: a monitored session's page, ...); auth*.go (sign-in and
// the dashboard's own sessions, auth_session.go), api_token*.go, csrf.go and
// headers.go are the security middleware; view.go lists the views and
// render.go parses their templates once at start, failing on a missing one;
// static/ holds the embedded assets (no third-party origin is ever
// contacted).
package dashboard
