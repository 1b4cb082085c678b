package detect

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

// TestRules: every detector has a rule version, the attack detectors an
// ATT&CK technique of schemas' catalog, and the engine stamps both on
// every alert.
func TestRules(t *testing.T) {
	t.Parallel()
	for _, name := range DetectorNames() {
		r := ruleOf(name)
		require.GreaterOrEqual(t, r.Version, 1, name)
		if r.Technique != "" {
			_, ok := schemas.TechniqueByID(r.Technique)
			require.True(t, ok, "%s: technique %s", name, r.Technique)
			require.True(t, schemas.ValidTechniqueID(r.Technique), name)
		}
	}
	for _, name := range []string{"impossible_travel", "token_reuse", "brute_force", "credential_stuffing", "session_hijack"} {
		require.NotEmpty(t, ruleOf(name).Technique, name)
	}
	require.Equal(t, Rule{}, ruleOf("no_such_detector"))
}

// TestScenarioAlertsCarryRule: the engine stamps every alert of the
// scenarios with its detector's technique and rule version.
func TestScenarioAlertsCarryRule(t *testing.T) {
	t.Parallel()
	forEachScenario(t, func(t *testing.T, dir, path string) {
		for _, a := range runEngine(t, scenarioConfig(t, dir), loadEvents(t, path)) {
			r := ruleOf(a.Detector)
			require.Equal(t, r.Technique, a.Technique, a.Detector)
			require.Equal(t, r.Version, a.RuleVersion, a.Detector)
		}
	})
}

func TestRegistryRejectsIncompleteRules(t *testing.T) {
	t.Parallel()
	f := registry()["brute_force"]
	for _, r := range []Rule{{Technique: "T1110.001"}, {Technique: "T9999", Version: 1}} {
		require.Panics(t, func() { registrar{}.add("brute_force", r, f) }, "%+v", r)
	}
}
