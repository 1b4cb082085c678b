package sdk_test

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sessionmon/sessionmon/sdk"
	"github.com/sessionmon/sessionmon/sdk/internal/check"
)

func batchHeader(version, count string) nats.Header {
	h := nats.Header{}
	if version != "" {
		h.Set(sdk.BatchHeader, version)
	}
	if count != "" {
		h.Set(sdk.BatchCountHeader, count)
	}
	return h
}

func TestSplitBatch(t *testing.T) {
	t.Parallel()
	body := []byte("{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n")
	events, batched, err := sdk.SplitBatch(batchHeader(sdk.BatchVersion, "3"), body)
	check.NoError(t, err)
	check.True(t, batched)
	check.Len(t, events, 3)
	for i, want := range []string{`{"a":1}`, `{"b":2}`, `{"c":3}`} {
		check.Equal(t, want, string(events[i]))
	}
	// Appending to an event must not overwrite the next one.
	_ = append(events[0], 'x')
	check.Equal(t, `{"b":2}`, string(events[1]))

	single := []byte(`{"a":1}`)
	events, batched, err = sdk.SplitBatch(nats.Header{}, single)
	check.NoError(t, err)
	check.False(t, batched)
	check.Len(t, events, 1)
	check.Equal(t, string(single), string(events[0]))
	events, batched, err = sdk.SplitBatch(nil, single)
	check.NoError(t, err)
	check.False(t, batched, "no header at all is one event")
	check.Len(t, events, 1)
}

func TestSplitBatchRejects(t *testing.T) {
	t.Parallel()
	two := []byte("{\"a\":1}\n{\"b\":2}\n")
	big := bytes.Repeat([]byte("{}\n"), sdk.MaxBatchBytes/3+1)
	for _, tc := range []struct {
		name string
		h    nats.Header
		data []byte
		want string
	}{
		{"unknown version", batchHeader("2", "2"), two, sdk.BatchHeader},
		{"missing count", batchHeader(sdk.BatchVersion, ""), two, sdk.BatchCountHeader},
		{"count not a number", batchHeader(sdk.BatchVersion, "two"), two, sdk.BatchCountHeader},
		{"count zero", batchHeader(sdk.BatchVersion, "0"), two, sdk.BatchCountHeader},
		{"count above the bound", batchHeader(sdk.BatchVersion, strconv.Itoa(sdk.MaxBatchEvents+1)), two, sdk.BatchCountHeader},
		{"count below the lines", batchHeader(sdk.BatchVersion, "1"), two, "2 lines"},
		{"count above the lines", batchHeader(sdk.BatchVersion, "3"), two, "2 lines"},
		{"no trailing newline", batchHeader(sdk.BatchVersion, "2"), []byte("{\"a\":1}\n{\"b\":2}"), "event 2 does not end with a newline"},
		{"empty body", batchHeader(sdk.BatchVersion, "1"), nil, "0 lines"},
		{"too big", batchHeader(sdk.BatchVersion, "1"), big, "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			events, batched, err := sdk.SplitBatch(tc.h, tc.data)
			check.ErrorIs(t, err, sdk.ErrFraming)
			check.ErrorContains(t, err, tc.want)
			check.True(t, batched)
			check.Nil(t, events)
		})
	}
}

// fnv1a is FNV-1a (32 bits) written out, as the NATS server's partition
// transform computes it, to check Partition against.
func fnv1a(s string) uint32 {
	h := uint32(2166136261)
	for i := range len(s) {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

func TestPartition(t *testing.T) {
	t.Parallel()
	for _, n := range []int{2, 3, 7, 64, 1024} {
		for _, tok := range []string{"k1:abc", "batch+0", "batch+17", "x"} {
			check.Equal(t, int(fnv1a(tok)%uint32(n)), sdk.Partition(tok, n), tok, n)
		}
	}
	check.Equal(t, 0, sdk.Partition("anything", 0))
	check.Equal(t, 0, sdk.Partition("anything", 1))
}

func TestBatchTokenMapsToItsPartition(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 3, 7, 64, 1024} {
		seen := make(map[string]bool)
		for p := range max(n, 1) {
			tok := sdk.BatchToken(p, n)
			check.True(t, sdk.IsBatchToken(tok), tok)
			check.Equal(t, p, sdk.Partition(tok, n), "n", n, "token", tok)
			check.False(t, seen[tok], "token used twice", tok)
			seen[tok] = true
			check.Equal(t, tok, sdk.BatchToken(p, n), "the same token again")
		}
	}
	check.False(t, sdk.IsBatchToken("k1:abc"))
}

func TestNewBatchMsgRoundTrip(t *testing.T) {
	t.Parallel()
	const n = 7
	ids := []string{"e1", "e2", "e3"}
	lines := [][]byte{[]byte(`{"id":"e1"}`), []byte(`{"id":"e2"}`), []byte(`{"id":"e3"}`)}
	for p := range n {
		msg := sdk.NewBatchMsg(testApp, p, n, ids, lines)
		check.Equal(t, sdk.EventSubject(testApp, sdk.BatchToken(p, n)), msg.Subject)
		token := msg.Subject[strings.LastIndexByte(msg.Subject, '.')+1:]
		check.Equal(t, p, sdk.Partition(token, n))
		check.Equal(t, sdk.BatchMsgID(ids), msg.Header.Get(nats.MsgIdHdr))
		check.Equal(t, "3", msg.Header.Get(sdk.BatchCountHeader))
		events, batched, err := sdk.SplitBatch(msg.Header, msg.Data)
		check.NoError(t, err)
		check.True(t, batched)
		check.Len(t, events, len(lines))
		for i := range lines {
			check.Equal(t, string(lines[i]), string(events[i]))
		}
	}
}

func TestBatchMsgID(t *testing.T) {
	t.Parallel()
	a := sdk.BatchMsgID([]string{"e1", "e2"})
	check.Equal(t, a, sdk.BatchMsgID([]string{"e1", "e2"}), "deterministic")
	check.True(t, strings.HasPrefix(a, "b1-"), a)
	check.Equal(t, len("b1-")+22, len(a), a)
	check.NotEqual(t, a, sdk.BatchMsgID([]string{"e2", "e1"}), "order matters")
	check.NotEqual(t, a, sdk.BatchMsgID([]string{"e1"}))
	check.NotEqual(t, a, sdk.BatchMsgID([]string{"e1e2"}), "ids are delimited")
	check.NotEqual(t, sdk.BatchMsgID([]string{"e1", ""}), sdk.BatchMsgID([]string{"e1"}))
}

func TestWithBatchingValidates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opt  sdk.Option
		want string
	}{
		{sdk.WithBatching(0, 1000, time.Millisecond), "maxEvents"},
		{sdk.WithBatching(sdk.MaxBatchEvents+1, 1000, time.Millisecond), "maxEvents"},
		{sdk.WithBatching(10, 0, time.Millisecond), "maxBytes"},
		{sdk.WithBatching(10, sdk.MaxBatchBytes+1, time.Millisecond), "maxBytes"},
		{sdk.WithBatching(10, 1000, -time.Millisecond), "linger"},
		{sdk.WithBatching(10, 1000, 2*time.Second), "linger"},
	} {
		_, err := sdk.Connect("nats://127.0.0.1:1", sdk.WithApp(testApp), tc.opt)
		check.ErrorIs(t, err, sdk.ErrInvalidOption)
		check.ErrorContains(t, err, "WithBatching: "+tc.want)
	}
	// Valid bounds pass the checks and fail only on the connection.
	for _, opt := range []sdk.Option{
		sdk.WithBatching(1, 1, 0),
		sdk.WithBatching(sdk.MaxBatchEvents, sdk.MaxBatchBytes, time.Second),
		sdk.WithoutBatching(),
	} {
		_, err := sdk.Connect("nats://127.0.0.1:1", sdk.WithApp(testApp), opt,
			sdk.WithNATSOptions(nats.Timeout(100*time.Millisecond)))
		check.ErrorContains(t, err, "connect to nats", fmt.Sprint(err))
	}
}
