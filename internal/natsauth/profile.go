package natsauth

import (
	"fmt"
	"time"

	"github.com/nats-io/jwt/v2"

	"github.com/sessionmon/sessionmon/schemas"
)

// Profile is a user's name and what it may publish and subscribe to.
type Profile struct {
	// Name is the user's name in its JWT and the base of its file name.
	Name string
	// Permissions are written into the user JWT; empty allows everything
	// in the account.
	Permissions jwt.Permissions
}

// Admin may do everything in the sessionmon account.
func Admin() Profile { return Profile{Name: AdminUser} }

// Service is what sessionmon's processes need: the JetStream API (but not
// deleting a stream or purging the account), acks and flow control of
// their consumers, the key-value and object stores, every sessionmon.>
// subject (events, alerts, dead letters, control requests such as
// sessionmon.control.forget, the dashboard's sessionmon.detect.familiar
// lookups), and their own request replies on _INBOX.>. It may also answer
// apps' layout requests (schemas.LayoutSubject): on AppInboxPrefix, and
// once per request on the reply subject of a request it received (so on
// AppInbox(app) of per-app credentials), within serviceReplyTTL.
func Service() Profile {
	p := Profile{Name: ServiceUser}
	p.Permissions.Pub.Allow.Add("$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "$KV.>", "$O.>", "sessionmon.>", "_INBOX.>", AppInboxPrefix+".>")
	p.Permissions.Pub.Deny.Add("$JS.API.STREAM.DELETE.>", "$JS.API.ACCOUNT.PURGE.>", "$JS.API.SERVER.>")
	p.Permissions.Sub.Allow.Add("sessionmon.>", "_INBOX.>")
	p.Permissions.Resp = &jwt.ResponsePermission{MaxMsgs: 1, Expires: serviceReplyTTL}
	return p
}

// serviceReplyTTL is how long the service user may answer a request on a
// reply subject its permissions do not otherwise allow.
const serviceReplyTTL = 10 * time.Second

// App may publish events of any app on the subjects the SDK uses
// (sessionmon.events.<app>.<subject>, never a partition's subject of the
// stream) and receive the acknowledgements on AppInboxPrefix, nothing
// else but the layout request (schemas.LayoutSubject): no JetStream API,
// no key-value store, no alerts or control subjects, no other client's
// replies.
func App() Profile {
	p := Profile{Name: AppUser}
	p.Permissions.Pub.Allow.Add(schemas.EventSubjectPrefix+"*.*", schemas.LayoutSubject)
	// Only erasure publishes replacements (schemas.ReplacesHeader).
	p.Permissions.Pub.Deny.Add(schemas.EventSubjectPrefix + "*." + schemas.ReplacementToken)
	p.Permissions.Sub.Allow.Add(AppInboxPrefix + ".>")
	return p
}

// NamedApp may publish the events of app only
// (sessionmon.events.<app>.<subject>: one token after the app, so an app
// named like a partition number cannot publish into a partition for
// another app)
// and receive their acknowledgements on AppInbox(app); it may also ask the
// events stream's layout (schemas.LayoutSubject). app must be an app name
// as the SDK's WithApp takes it.
func NamedApp(app string) (Profile, error) {
	if !schemas.ValidApp(app) {
		return Profile{}, fmt.Errorf("app name %q: must be 1-64 characters of A-Z a-z 0-9 _ - (as in the SDK's WithApp)", app)
	}
	p := Profile{Name: "app-" + app}
	p.Permissions.Pub.Allow.Add(schemas.EventSubjectPrefix+app+".*", schemas.LayoutSubject)
	p.Permissions.Pub.Deny.Add(schemas.EventSubjectPrefix + app + "." + schemas.ReplacementToken)
	p.Permissions.Sub.Allow.Add(AppInbox(app) + ".>")
	return p, nil
}
