package schemas

// ReplacesHeader marks a message of the events stream that replaces
// another one: its value is the stream sequence (decimal) of the message
// it replaces. Erasure deletes a batched message that holds events of an
// erased subject and publishes the batch's other events again as a new
// message carrying this header. A consumer that has already handled the
// original message skips the replacement (its events were judged once);
// one that has not processes it as any other message.
//
// The header counts only on a message whose subject ends with
// ReplacementToken, which app credentials may not publish: on any other
// message it is ignored, so that no publisher can make the detectors skip
// its events.
const ReplacesHeader = "Sessionmon-Replaces"

// ReplacementToken is the last token of a replacement's subject,
// sessionmon.events.<partition>.<app>.batch+replaced: a batch token (so
// the message reads as a batch) that no batch of a publisher has and that
// app credentials are denied.
const ReplacementToken = "batch+replaced"
