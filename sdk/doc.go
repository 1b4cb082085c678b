// Package sdk is the Go SDK apps use to report session events to
// sessionmon. It is the only sessionmon package an app imports, a module of
// its own (github.com/sessionmon/sessionmon/sdk) that needs nothing beyond
// the standard library and nats.go, so an app gets none of the server's
// dependencies.
//
// # Adding it in minutes
//
// At startup, build a Pseudonymizer from a secret key (32 random bytes kept
// with the app's other secrets, plus a short key id), a RequestInspector
// that knows your reverse proxies, and a Client:
//
//	p, err := sdk.NewPseudonymizer("k1", key)
//	ri, err := sdk.NewRequestInspector(p, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
//	client, err := sdk.Connect("nats://nats:4222", sdk.WithApp("shop"),
//		sdk.WithCredentialsFile("shop.creds"), sdk.WithInboxPrefix("_INBOX_shop"))
//	defer client.Close(shutdownCtx)
//
// The credentials file comes from sessionmon: `sessionmon creds app shop`
// makes one that may publish the app's events only, and receive the
// acknowledgements on the inbox prefix "_INBOX_shop" (the shared app.creds
// of serve uses "_APPS_INBOX").
//
// Where a session event happens (a login, a logout, a token refresh), fill
// an Event with pseudonyms and publish it: Publish waits for the stream's
// acknowledgement, PublishAsync returns at once and never blocks a request
// unless WithBlockOnFull asks it to. See the Example for a login handler.
// Close, at shutdown, publishes whatever is still buffered.
//
// # net/http apps
//
// A Reporter does the pseudonymizing and publishing for a net/http app.
// Its Middleware reports session.activity for the requests of signed-in
// sessions, at most once per session and ActivityInterval, with bounded
// memory; its Login, LoginFailed, Logout and Token methods report those
// events from the app's handlers, given raw ids:
//
//	rep, err := sdk.NewReporter(client, p, sdk.ReporterOptions{
//		Inspector: ri, Subject: userIDOf, Session: sessionIDOf,
//	})
//	handler := rep.Middleware(mux) // or chi: r.Use(rep.Middleware)
//
// examples/httpapp is a complete app.
//
// # Checks before sending
//
// Publish and PublishAsync check what an Event can get wrong against
// schema v1 before anything is sent (a known type, a subject, a session on
// session.* events, a token on token.* events, lengths, counts and the
// 16 KiB size), and fail with a *ValidationError naming every broken field.
// sessionmon checks every event again when it receives it.
//
// # What never leaves the app
//
// User ids, e-mail addresses, session ids, device ids, tokens and client
// addresses stay in the app. The fields of an Event that identify someone
// or something have the type Pseudonym, which only a Pseudonymizer makes:
// a keyed HMAC-SHA256 of the identifier, under a per-kind key derived from
// your secret, so a raw value cannot be sent by mistake and the same value
// as a subject and as a session gives unrelated pseudonyms. Tokens are sent
// as fingerprints (Pseudonymizer.TokenID), with claim names but never claim
// values. A client address is sent only as its network (an IPv4 /24 or an
// IPv6 /48) and a keyed hash, and the SDK cuts any prefix you set
// yourself to those widths. sessionmon can correlate events of one subject
// or session but cannot learn who or what they are; the key never leaves
// the app, so keep it secret and rotate it with a new key id.
//
// What does leave the app is what an Event says beyond that: the event
// type and time, the app name, reasons, the user agent, coarse location
// fields you fill, token key ids and algorithms, cookie and policy
// settings, action names and attrs. Put no personal data in Reason, Action
// names or Attrs. The User-Agent and a token's key id are the end user's to
// choose: sessionmon clears either when it looks like personal data (an
// e-mail address, say) as it admits the event, and keeps the event.
//
// # Delivery
//
// Each event has an ID (made by NewEventID when empty) sent as the
// Nats-Msg-Id header, so the stream stores an event once even when a
// retry or the app sends it twice within the stream's duplicate window.
// Transient failures are retried with backoff (WithRetry). An event
// PublishAsync accepted is either stored or counted as failed: failures
// go to the WithOnError callback and are reported by Flush and Close,
// never dropped silently. Memory is bounded: at most WithAsyncBuffer
// events wait to be sent and WithAsyncWindow messages await their
// acknowledgement.
//
// # Batching
//
// PublishAsync sends events in batched messages (WithBatching, on by
// default): the SDK takes what is buffered, waiting up to 5ms
// (DefaultBatchLinger) after an event for more, and sends the events whose
// subjects fall in one partition of the events stream as one message of
// up to 256 events and 512 KiB. A single event at a low rate therefore
// waits at most the linger before it is sent; under load, one message
// carries many events and costs the app, NATS and sessionmon far less than
// one message per event. Every event keeps its ID and is counted,
// reported and retried as before: a retried batch has the same content and
// message id, so the stream stores it once. The SDK asks sessionmon for
// the stream's layout on LayoutSubject when it starts and every 30s, on
// the connection's inbox prefix; until it gets an answer saying sessionmon
// reads batches, and whenever nobody answers, it sends one message per
// event. WithoutBatching turns batching off; Publish and PublishJSON never
// batch.
//
// # Concurrency
//
// A Client owns three goroutines, a sender, an acknowledgement reader and
// (with batching) a layout reader, which Close ends. Its locks (Client.mu for the close state and the
// pending count, the retry list lock, and the buffer lock read-held while
// pushing an event) are never held together, so they have no lock order.
// Pseudonymizer and RequestInspector are immutable.
package sdk
