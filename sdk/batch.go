package sdk

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
)

// Batched messages (framing version 1). One JetStream message may carry
// several events of one app whose subjects fall in one partition of the
// events stream, so that the publisher, the NATS server and every consumer
// pay their per-message cost once per batch instead of once per event:
//
//   - the body is the events' JSON objects, one per line (NDJSON), each
//     ending with "\n";
//   - the header BatchHeader names the framing version ("1") and
//     BatchCountHeader the number of events;
//   - the subject is EventSubjectPrefix + "<app>." + BatchToken(p, n): a
//     token that is never a pseudonym and that the stream's partition
//     transform maps to partition p, the partition of every subject in the
//     batch;
//   - the Nats-Msg-Id is BatchMsgID of the events' ids, in order, so that
//     a batch sent again is stored once.
//
// A message without BatchHeader is one event, as before. The full
// description is schemas/batch.md in the sessionmon repository.
const (
	// BatchHeader names the framing version of a batched message.
	BatchHeader = "Sessionmon-Batch"
	// BatchCountHeader is the number of events in a batched message.
	BatchCountHeader = "Sessionmon-Batch-Count"
	// BatchVersion is the framing version this SDK writes and reads.
	BatchVersion = "1"
	// MaxBatchEvents bounds the events of one batched message.
	MaxBatchEvents = 1000
	// MaxBatchBytes bounds the body of one batched message (below NATS's
	// default 1 MiB maximum payload, with room for the headers).
	MaxBatchBytes = 900 << 10
	// batchTokenPrefix starts every batch token; "+" is not in a
	// pseudonym's alphabet, so no subject's events are ever purged with a
	// batch.
	batchTokenPrefix = "batch+"
	// LayoutSubject is where a publisher asks for the events stream's
	// partition count (a NATS request; sessionmon's ingest workers
	// answer with a Layout in JSON).
	LayoutSubject = "sessionmon.layout.events"
)

// Layout is the answer on LayoutSubject.
type Layout struct {
	// Partitions is the events stream's partition count; 0 when it is
	// not partitioned.
	Partitions int `json:"partitions"`
	// Batch lists the framing versions the consumers read.
	Batch []string `json:"batch"`
}

// IsBatchToken reports whether token, the last token of an event
// subject, is a batch token.
func IsBatchToken(token string) bool { return strings.HasPrefix(token, batchTokenPrefix) }

var batchTokens sync.Map // int (n) -> []string

// BatchToken returns the subject token of a batch of partition p among n
// (0 or 1: an unpartitioned stream): the first of "batch+0", "batch+1", ...
// whose partition, computed as the stream's transform computes it (FNV-1a,
// 32 bits, modulo n), is p.
func BatchToken(p, n int) string {
	if n <= 1 {
		return batchTokenPrefix + "0"
	}
	if t, ok := batchTokens.Load(n); ok {
		return t.([]string)[p]
	}
	tokens := make([]string, n)
	left := n
	for k := 0; left > 0; k++ {
		tok := batchTokenPrefix + strconv.Itoa(k)
		if q := Partition(tok, n); tokens[q] == "" {
			tokens[q] = tok
			left--
		}
	}
	batchTokens.Store(n, tokens)
	return tokens[p]
}

// Partition returns the partition of a subject token among n partitions as
// the NATS server's partition transform computes it; 0 when n <= 1.
func Partition(token string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(token))
	return int(h.Sum32() % uint32(n))
}

// BatchMsgID returns the message id of a batch of events with these ids,
// in order: "b1-" and the first 128 bits of the SHA-256 of the ids, each
// followed by "\n", in base64url.
func BatchMsgID(ids []string) string {
	h := sha256.New()
	for _, id := range ids {
		h.Write([]byte(id))
		h.Write([]byte{'\n'})
	}
	return "b1-" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// ErrFraming is wrapped by SplitBatch's errors.
var ErrFraming = errors.New("batch framing")

// SplitBatch returns the events of a message: data itself when h names no
// batch, or the lines of a batched message. It checks the framing version,
// that the count header matches the lines and the bounds; the lines share
// data's memory.
func SplitBatch(h nats.Header, data []byte) (events [][]byte, batched bool, err error) {
	v := h.Get(BatchHeader)
	if v == "" {
		return [][]byte{data}, false, nil
	}
	if v != BatchVersion {
		return nil, true, fmt.Errorf("%w: header %s: the version is not one this build reads (%q)", ErrFraming, BatchHeader, BatchVersion)
	}
	count, err := strconv.Atoi(h.Get(BatchCountHeader))
	if err != nil || count < 1 || count > MaxBatchEvents {
		return nil, true, fmt.Errorf("%w: header %s: must be a count from 1 to %d", ErrFraming, BatchCountHeader, MaxBatchEvents)
	}
	if len(data) > MaxBatchBytes {
		return nil, true, fmt.Errorf("%w: body: %d bytes, more than %d", ErrFraming, len(data), MaxBatchBytes)
	}
	events = make([][]byte, 0, count)
	for rest := data; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			return nil, true, fmt.Errorf("%w: body: event %d does not end with a newline", ErrFraming, len(events)+1)
		}
		events = append(events, rest[:i:i])
		rest = rest[i+1:]
	}
	if len(events) != count {
		return nil, true, fmt.Errorf("%w: body: %d lines, header %s says %d", ErrFraming, len(events), BatchCountHeader, count)
	}
	return events, true, nil
}

// NewBatchMsg returns the batched message of events of app in partition p
// among n: lines are the events' JSON objects (without newlines) and ids
// their ids, in the same order. It does not check the bounds.
func NewBatchMsg(app string, p, n int, ids []string, lines [][]byte) *nats.Msg {
	size := 0
	for _, l := range lines {
		size += len(l) + 1
	}
	body := make([]byte, 0, size)
	for _, l := range lines {
		body = append(body, l...)
		body = append(body, '\n')
	}
	return &nats.Msg{
		Subject: EventSubject(app, BatchToken(p, n)),
		Header: nats.Header{
			nats.MsgIdHdr:    []string{BatchMsgID(ids)},
			BatchHeader:      []string{BatchVersion},
			BatchCountHeader: []string{strconv.Itoa(len(lines))},
		},
		Data: body,
	}
}
