package schemas

import "github.com/sessionmon/sessionmon/sdk"

// Batched messages: several events of one app and one partition in one
// JetStream message (framing version 1, described in batch.md). The SDK,
// which writes them, holds the one implementation.
const (
	BatchHeader      = sdk.BatchHeader
	BatchCountHeader = sdk.BatchCountHeader
	BatchVersion     = sdk.BatchVersion
	MaxBatchEvents   = sdk.MaxBatchEvents
	MaxBatchBytes    = sdk.MaxBatchBytes
	LayoutSubject    = sdk.LayoutSubject
)

// Layout is the answer publishers get on LayoutSubject.
type Layout = sdk.Layout

var (
	// SplitBatch returns the events of one message, batched or not.
	SplitBatch = sdk.SplitBatch
	// BatchMsgID is the message id of a batch of events with these ids.
	BatchMsgID = sdk.BatchMsgID
	// BatchToken is the subject token of a batch of partition p among n.
	BatchToken = sdk.BatchToken
	// IsBatchToken reports whether a subject token is a batch token.
	IsBatchToken = sdk.IsBatchToken
	// NewBatchMsg builds a batched message.
	NewBatchMsg = sdk.NewBatchMsg
	// ErrFraming is wrapped by SplitBatch's errors.
	ErrFraming = sdk.ErrFraming
)
