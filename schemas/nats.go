package schemas

// NATS names of the event contract. Events travel on
// EventSubjectPrefix + "<app>.<subject>", so a subject's events can be
// partitioned by NATS subject mapping on the last token.
const (
	// EventStream is the JetStream stream that holds session events.
	EventStream = "SESSIONMON_EVENTS"
	// EventSubjectPrefix starts every event subject.
	EventSubjectPrefix = "sessionmon.events."
	// EventSubjects is the stream's subject filter.
	EventSubjects = EventSubjectPrefix + ">"
)

// EventSubject returns the NATS subject an event of app about subject is
// published on. Both are validated tokens (no dots, spaces or wildcards).
func EventSubject(app, subject string) string {
	return EventSubjectPrefix + app + "." + subject
}
