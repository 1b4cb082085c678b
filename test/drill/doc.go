// Package drill is the fault drill of sessionmon: it runs the real
// binary against a real NATS server and ClickHouse, injects a fault while
// an SDK publisher keeps a steady load, and reconciles what was published
// (acknowledged by JetStream), stored (counted once, with FINAL),
// dead-lettered, alerted and delivered to a signing-checked webhook
// receiver.
//
// The harness lives here; the scenarios are the TestDrill* tests. The CI
// subset runs without a build tag (skipped under -short); the rest need
// -tags drill (`make drill`). Each scenario prints one row of the results
// table (see Result and Table) and, when DRILL_RESULTS names a file,
// appends it there as JSON.
//
// Nothing here logs event contents: the publisher keeps only event ids and
// the receiver only webhook ids.
package drill
