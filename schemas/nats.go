package schemas

import (
	"strconv"
	"strings"

	"github.com/sessionmon/sessionmon/sdk"
)

// NATS names of the event contract. Apps publish an event on
// EventSubjectPrefix + "<app>.<subject>"; the events stream stores it on
// EventSubjectPrefix + "<partition>.<app>.<subject>", where the partition
// is NATS's deterministic partition function of the subject token (see
// EventPartitionTransform), so that every event of one subject lands in one
// partition and a detect process can own a set of partitions.
const (
	// EventStream is the JetStream stream that holds session events.
	EventStream = "SESSIONMON_EVENTS"
	// EventSubjectPrefix starts every event subject.
	EventSubjectPrefix = sdk.EventSubjectPrefix
	// EventSubjects is the stream's subject filter: it takes both the
	// published and the partitioned form.
	EventSubjects = EventSubjectPrefix + ">"
	// MaxEventPartitions bounds the number of partitions of the events
	// stream.
	MaxEventPartitions = 1024
)

// EventSubject returns the NATS subject an event of app about subject is
// published on. Both are validated tokens (no dots, spaces or wildcards).
// The SDK, which publishes the events, holds the one implementation.
func EventSubject(app, subject string) string {
	return sdk.EventSubject(app, subject)
}

// EventPartitionTransform returns the source and destination of the events
// stream's subject transform into n partitions: a message published on
// sessionmon.events.<app>.<subject> is stored on
// sessionmon.events.<p>.<app>.<subject> with p = EventPartition(subject, n).
// Messages that already carry five tokens are stored as published.
func EventPartitionTransform(n int) (src, dest string) {
	return EventSubjectPrefix + "*.*",
		EventSubjectPrefix + "{{partition(" + strconv.Itoa(n) + ",2)}}.{{wildcard(1)}}.{{wildcard(2)}}"
}

// EventPartitionsOf returns the partition count of a transform destination
// made by EventPartitionTransform, and false for any other destination.
func EventPartitionsOf(dest string) (int, bool) {
	rest, ok := strings.CutPrefix(dest, EventSubjectPrefix+"{{partition(")
	if !ok {
		return 0, false
	}
	num, rest, ok := strings.Cut(rest, ",2)}}.")
	if !ok || rest != "{{wildcard(1)}}.{{wildcard(2)}}" {
		return 0, false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > MaxEventPartitions {
		return 0, false
	}
	return n, true
}

// EventPartition returns the partition of subject among n, computed as the
// NATS server's partition mapping function does (FNV-1a, 32 bits, of the
// token, modulo n).
func EventPartition(subject string, n int) int { return sdk.Partition(subject, n) }

// EventPartitionFilter returns the filter subject of partition p's events.
func EventPartitionFilter(p int) string {
	return EventSubjectPrefix + strconv.Itoa(p) + ".*.*"
}

// UnpartitionedEventFilter matches the events stored before the stream
// was partitioned (sessionmon.events.<app>.<subject>).
const UnpartitionedEventFilter = EventSubjectPrefix + "*.*"

// SubjectEventFilters returns the filter subjects that match every stored
// event of subject, partitioned or not (for erasure and export).
func SubjectEventFilters(subject string) []string {
	return []string{EventSubjectPrefix + "*.*." + subject, EventSubjectPrefix + "*." + subject}
}

// EventSubjectToken returns the subject token (the last) of a stored or
// published event's NATS subject.
func EventSubjectToken(natsSubject string) string {
	return natsSubject[strings.LastIndexByte(natsSubject, '.')+1:]
}

// SubjectHashHeader is the header that names the data subject a message of
// the alerts or dead-letter stream is about, by SubjectHash, so that an
// erasure finds the subject's messages in streams whose NATS subjects do
// not name it. A message about several subjects carries one value each.
const SubjectHashHeader = "Sessionmon-Subject-Hash"

// EventSubjectTokens returns the app and subject tokens of an event's NATS
// subject, as published (sessionmon.events.<app>.<subject>) or as stored
// in a partition (sessionmon.events.<partition>.<app>.<subject>, the
// partition a decimal number below MaxEventPartitions), and false for any
// other subject. An event's app and subject must be those of its NATS
// subject: the app is what NATS permissions bind to a publisher, and the
// subject is what erasure purges the stream by.
func EventSubjectTokens(natsSubject string) (app, subject string, ok bool) {
	rest, ok := strings.CutPrefix(natsSubject, EventSubjectPrefix)
	if !ok {
		return "", "", false
	}
	// Cut rather than Split: every event passes here, and Cut allocates
	// nothing.
	first, rest, _ := strings.Cut(rest, ".")
	second, third, three := strings.Cut(rest, ".")
	switch {
	case strings.IndexByte(third, '.') >= 0:
		return "", "", false
	case three:
		p, err := strconv.Atoi(first)
		if err != nil || p < 0 || p >= MaxEventPartitions || strconv.Itoa(p) != first {
			return "", "", false
		}
		app, subject = second, third
	default:
		app, subject = first, second
	}
	if app == "" || subject == "" {
		return "", "", false
	}
	return app, subject, true
}

// NATS names of the alert contract. An alert travels on
// AlertSubjectPrefix + "<severity>.<detector>", so a subscriber can ask for
// sessionmon.alerts.critical.> or sessionmon.alerts.*.brute_force. Status
// changes travel on AlertSubjectPrefix + "status.<status>" in the same
// stream ("status" is no severity).
const (
	// AlertStream is the JetStream stream that holds alerts and their
	// status changes.
	AlertStream = "SESSIONMON_ALERTS"
	// AlertSubjectPrefix starts every alert subject.
	AlertSubjectPrefix = "sessionmon.alerts."
	// AlertSubjects is the stream's subject filter.
	AlertSubjects = AlertSubjectPrefix + ">"
	// StatusSubjectPrefix starts every status change subject.
	StatusSubjectPrefix = AlertSubjectPrefix + "status."
)

// AlertSubject returns the subject a is published on.
func AlertSubject(a *Alert) string {
	return AlertSubjectPrefix + string(a.Severity) + "." + a.Detector
}

// StatusSubject returns the subject a change to status is published on.
func StatusSubject(status AlertStatus) string {
	return StatusSubjectPrefix + string(status)
}

// Durable consumer names. Processes of one kind share their consumer, so
// JetStream spreads the work between them.
const (
	// IngestDurable is ingest's consumer of EventStream.
	IngestDurable = "sessionmon-ingest"
	// DetectDurable is detect's consumer of EventStream; a partition's
	// consumer adds "-p<partition>", the source role's "-sources".
	DetectDurable = "sessionmon-detect"
	// AlertStoreDurable is the consumer of AlertStream that writes alerts
	// and status changes to ClickHouse (ingest.NewAlerts). It keeps the
	// name it had when detect wrote them.
	AlertStoreDurable = "sessionmon-detect-store"
	// NotifyConsumerPrefix starts the notifier's consumer names:
	// NotifyConsumerPrefix + "<webhook>" on AlertStream, and the same +
	// "-redeliver" on RedeliverStream.
	NotifyConsumerPrefix = "sessionmon-notify-"
)

// ForgetSubject is the NATS subject on which `sessionmon erase` and the
// erasure worker ask the running detectors to drop a data subject's state
// (the payload is the pseudonym; answers are detect.ForgetReply JSON).
const ForgetSubject = "sessionmon.control.forget"

// Names of the other streams and buckets sessionmon declares (see
// natsconn.EnsureTopology).
const (
	// DLQStream holds the events ingest refused, on
	// DLQSubjectPrefix + "<reason>".
	DLQStream = "SESSIONMON_DLQ"
	// DLQSubjectPrefix starts every dead letter's subject.
	DLQSubjectPrefix = "sessionmon.dlq."
	// StateBucket is the object store of the detectors' state snapshots.
	StateBucket = "SESSIONMON_DETECT_STATE"
	// UndeliverableBucket is the key-value bucket of alerts a webhook gave
	// up on, keyed "<webhook>.<alert id>".
	UndeliverableBucket = "SESSIONMON_UNDELIVERABLE"
	// RedeliverStream is a work-queue stream of alerts queued again by
	// hand, on RedeliverSubjectPrefix + "<webhook>".
	RedeliverStream = "SESSIONMON_REDELIVER"
	// RedeliverSubjectPrefix starts every redelivery subject.
	RedeliverSubjectPrefix = "sessionmon.notify.redeliver."
	// LockBucket is the key-value bucket of sessionmon's job locks.
	LockBucket = "SESSIONMON_LOCKS"
	// DetectLeaseBucket is the key-value bucket of the leases detect
	// processes hold on what they own: key "<durable>" for a process that
	// owns everything, "<durable>.p<N>" for partition N and
	// "<durable>.sources" for the source role. Its TTL is the lease's.
	DetectLeaseBucket = "SESSIONMON_DETECT_LEASES"
	// DashboardSessionBucket is the key-value bucket of the dashboard's
	// server-side sessions; its TTL is the absolute session timeout.
	DashboardSessionBucket = "SESSIONMON_DASHBOARD_SESSIONS"
	// DashboardTokenBucket is the key-value bucket of the dashboard's API
	// tokens.
	DashboardTokenBucket = "SESSIONMON_DASHBOARD_TOKENS"
	// SuppressionBucket is the key-value bucket of the suppression rules
	// (SuppressionRule JSON, keyed by rule id): the dashboard writes them,
	// every detect process watches them.
	SuppressionBucket = "SESSIONMON_SUPPRESSIONS"
	// NetworkBucket is the key-value bucket of the shared egresses
	// detect learned (detect.NetworkList JSON, one key per detect engine,
	// "unit-<name>"); entries older than an hour disappear, so a stopped
	// engine's list goes away.
	NetworkBucket = "SESSIONMON_NETWORKS"
	// IntakeTokenBucket is the key-value bucket of the HTTP intake's
	// per-app tokens (key: SHA-256 of the token, hex; never the token).
	IntakeTokenBucket = "SESSIONMON_INTAKE_TOKENS"
)

// DetectFamiliarSubject is the NATS subject on which the dashboard asks
// the detect process owning a subject's partition for the subject's
// familiar networks, ASNs and devices (request: detect.FamiliarRequest
// JSON; reply: detect.FamiliarReply JSON). Only sessionmon's own users
// may publish on it.
const DetectFamiliarSubject = "sessionmon.detect.familiar"
