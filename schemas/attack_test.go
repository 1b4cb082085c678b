package schemas_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sessionmon/sessionmon/schemas"
)

func TestTechniques(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"T1078", "T1110.001", "T1110.004", "T1539", "T1550.001", "T1550.004", "T1606"} {
		tech, ok := schemas.TechniqueByID(id)
		require.True(t, ok, id)
		require.Equal(t, id, tech.ID)
		require.True(t, schemas.ValidTechniqueID(id), id)
		require.NotEmpty(t, tech.Name, id)
		require.Regexp(t, `^TA[0-9]{4}$`, tech.Tactic.ID, id)
		require.NotEmpty(t, tech.Tactic.Name, id)
	}
	tech, _ := schemas.TechniqueByID("T1110.001")
	require.Equal(t, "https://attack.mitre.org/techniques/T1110/001/", tech.URL())
	tech, _ = schemas.TechniqueByID("T1078")
	require.Equal(t, "https://attack.mitre.org/techniques/T1078/", tech.URL())
	_, ok := schemas.TechniqueByID("T9999")
	require.False(t, ok)
	for _, id := range []string{"", "T1", "t1078", "T1078.1", "T1078/001", "TA0001"} {
		require.False(t, schemas.ValidTechniqueID(id), id)
		require.Empty(t, schemas.Technique{ID: id}.URL(), id)
	}
}
