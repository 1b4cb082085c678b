package detect

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

func TestSessionFixationObserve(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		event *schemas.Event
		want  []polHit
	}{
		{
			name:  "fixation/pre-login id kept at login",
			event: polEv("s1", schemas.SessionStarted, time.Minute, polPrevious(polSessA)),
			want:  []polHit{{Key: polSessA, At: time.Minute, Evidence: []string{"s1"}}},
		},
		{
			name:  "fixation/id rotated at login",
			event: polEv("s1", schemas.SessionStarted, time.Minute, polPrevious(polAnon)),
		},
		{
			name:  "fixation/no previous session reported",
			event: polEv("s1", schemas.SessionStarted, time.Minute),
		},
		{
			name:  "fixation/other events are not judged",
			event: polEv("s1", schemas.SessionActivity, time.Minute),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := NewSessionFixation(defaultSessionFixationConfig())
			require.NoError(t, err)
			want := tc.want
			if want == nil {
				want = []polHit{}
			}
			require.Equal(t, want, polHits(polRun(t, d, tc.event)))
		})
	}
}

func TestSessionFixationAlert(t *testing.T) {
	t.Parallel()
	d, err := NewSessionFixation(defaultSessionFixationConfig())
	require.NoError(t, err)
	got := polRun(t, d, polEv("s1", schemas.SessionStarted, 0, polPrevious(polSessA)))
	require.Equal(t, []schemas.Alert{{
		Detector: "session_fixation",
		Severity: schemas.SeverityHigh,
		Time:     schemas.At(polBase),
		App:      polApp,
		Subject:  polSubject,
		Session:  polSessA,
		Title:    "Session id not rotated at login",
		Summary:  "Session k1:Sessi… of app shop kept its pre-login session id at login; the id must be replaced when the user authenticates.",
		Details:  map[string]any{"previous_session": polSessA},
		Evidence: []string{"s1"},
		Key:      polSessA,
	}}, got)
}

func TestSessionFixationConfig(t *testing.T) {
	t.Parallel()
	cfg := defaultSessionFixationConfig()
	cfg.Severity = "severe"
	d, err := NewSessionFixation(cfg)
	require.Nil(t, d)
	require.ErrorContains(t, err, `detectors.session_fixation.severity: must be low, medium, high or critical (got "severe")`)
}

func TestSessionFixationScenarios(t *testing.T) {
	t.Parallel()
	polCheckScenarios(t, []polScenarioCase{
		{
			name: "session_fixation_fires",
			want: []polScenarioHit{
				{Detector: "session_fixation", Key: "k1:SsF1xat1onF1resSess1n", Time: "2026-11-25T10:00:00.020Z", Evidence: []string{"sff-002"}},
			},
		},
		{name: "session_fixation_rotated"},
	})
}
