package intake_test

import (
	"net/http"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/sessionmon/sessionmon/intake"
)

// TestOpenAPIDescribesTheIntake keeps openapi.yaml in step with the
// handler: the path, every status code the handler answers with, and the
// result statuses.
func TestOpenAPIDescribesTheIntake(t *testing.T) {
	b, err := os.ReadFile("openapi.yaml")
	require.NoError(t, err)
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]any `yaml:"responses"`
		} `yaml:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Enum []string `yaml:"enum"`
				} `yaml:"properties"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	require.NoError(t, yaml.Unmarshal(b, &doc))
	post, ok := doc.Paths[intake.Path]["post"]
	require.True(t, ok, "POST %s is described", intake.Path)
	var codes []int
	for c := range post.Responses {
		n, err := strconv.Atoi(c)
		require.NoError(t, err)
		codes = append(codes, n)
	}
	slices.Sort(codes)
	require.Equal(t, []int{http.StatusAccepted, http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge,
		http.StatusUnsupportedMediaType, http.StatusTooManyRequests, http.StatusServiceUnavailable}, codes)
	require.Equal(t, []string{intake.StatusAccepted, intake.StatusDuplicate, intake.StatusRejected, intake.StatusFailed},
		doc.Components.Schemas["Result"].Properties["status"].Enum)
}
