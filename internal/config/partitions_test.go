package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParsePartitions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, format string
		want             []int
		err              string
	}{
		{name: "all/empty", in: "", format: "all"},
		{name: "all/word", in: "all", format: "all"},
		{name: "range", in: "0-3", want: []int{0, 1, 2, 3}, format: "0-3"},
		{name: "list and range", in: "7, 0-1,4", want: []int{7, 0, 1, 4}, format: "7,0-1,4"},
		{name: "duplicates once", in: "2,1-2", want: []int{2, 1}, format: "2,1"},
		{name: "bad/reversed", in: "3-1", err: `got "3-1"`},
		{name: "bad/word", in: "one", err: "must be partitions and ranges"},
		{name: "bad/negative", in: "-1", err: "must be partitions"},
		{name: "bad/too big", in: "1024", err: "between 0 and 1023"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parsePartitions(tt.in)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.format, formatPartitions(got))
		})
	}
}

func TestValidateDetectPartitions(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Stream.Partitions = 4
	c.Detect.Partitions = []int{1, 4}
	require.ErrorContains(t, c.Validate(), "detect-partitions (SESSIONMON_DETECT_PARTITIONS): partition 4 does not exist: event-partitions is 4")
	c.Stream.Partitions = 0
	require.ErrorContains(t, c.Validate(), "event-partitions (SESSIONMON_EVENT_PARTITIONS): must be between 1 and 1024")
}
