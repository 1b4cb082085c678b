package dashboard

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// openAPIDoc is the part of openapi.yaml the tests check.
type openAPIDoc struct {
	OpenAPI string `yaml:"openapi"`
	Servers []struct {
		URL string `yaml:"url"`
	} `yaml:"servers"`
	Paths map[string]map[string]openAPIOperation `yaml:"paths"`
	// Components is kept as a tree to resolve $refs.
	Components map[string]map[string]any `yaml:"components"`
}

type openAPIOperation struct {
	OperationID string             `yaml:"operationId"`
	MinRole     string             `yaml:"x-min-role"`
	Reauth      bool               `yaml:"x-reauth"`
	Parameters  []openAPIParameter `yaml:"parameters"`
	Responses   map[string]any     `yaml:"responses"`
	Security    *[]map[string]any  `yaml:"security"`
}

type openAPIParameter struct {
	Ref  string `yaml:"$ref"`
	Name string `yaml:"name"`
	In   string `yaml:"in"`
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func loadOpenAPI(t *testing.T) (openAPIDoc, map[string]any) {
	t.Helper()
	var doc openAPIDoc
	require.NoError(t, yaml.Unmarshal(openAPISpec, &doc), "openapi.yaml")
	var tree map[string]any
	require.NoError(t, yaml.Unmarshal(openAPISpec, &tree))
	require.Equal(t, "3.1.0", doc.OpenAPI)
	require.Len(t, doc.Servers, 1)
	require.Equal(t, "/api/v1", doc.Servers[0].URL)
	return doc, tree
}

// echoPathParam matches echo's ":name" path parameters.
var echoPathParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// apiRoutes returns "METHOD /path" of every /api/v1 route registered in
// echo, in OpenAPI's path syntax relative to the server URL.
func apiRoutes(t *testing.T, s *Server) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range s.echo.Routes() {
		rest, ok := strings.CutPrefix(r.Path, "/api/v1")
		if !ok {
			continue
		}
		require.Contains(t, strings.ToLower(strings.Join(httpMethods, " ")), strings.ToLower(r.Method),
			"route %s %s: a method OpenAPI cannot describe", r.Method, r.Path)
		out[r.Method+" "+echoPathParam.ReplaceAllString(rest, "{$1}")] = r.Name
	}
	require.NotEmpty(t, out)
	return out
}

func TestOpenAPIDescribesExactlyTheRegisteredAPIRoutes(t *testing.T) {
	t.Parallel()
	s := newRouteServer(t)
	doc, _ := loadOpenAPI(t)

	registered := apiRoutes(t, s)
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			require.True(t, slices.Contains(httpMethods, method), "paths.%s: %q is not an HTTP method", path, method)
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	var missing, extra []string
	for r := range registered {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for d := range documented {
		if _, ok := registered[d]; !ok {
			extra = append(extra, d)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	require.Empty(t, missing, "routes registered in server.go but missing from openapi.yaml")
	require.Empty(t, extra, "operations in openapi.yaml that server.go does not register")
}

func TestOpenAPIOperationsAreComplete(t *testing.T) {
	t.Parallel()
	doc, tree := loadOpenAPI(t)
	ids := map[string]string{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			where := fmt.Sprintf("%s %s", strings.ToUpper(method), path)
			require.NotEmpty(t, op.OperationID, "%s: operationId", where)
			require.NotContains(t, ids, op.OperationID, "%s: operationId %q also used by %s", where, op.OperationID, ids[op.OperationID])
			ids[op.OperationID] = where
			require.NotEmpty(t, op.Responses, "%s: responses", where)

			// Every route but the public document needs a role, says
			// which, and documents 401 and 403 in the error format.
			public := op.Security != nil && len(*op.Security) == 0
			if !public {
				_, err := ParseRole(op.MinRole)
				require.NoError(t, err, "%s: x-min-role", where)
				for _, code := range []string{"401", "403"} {
					require.Contains(t, op.Responses, code, "%s: responses", where)
				}
			}
			// Every path parameter is declared.
			declared := map[string]bool{}
			for _, p := range op.Parameters {
				if p.Ref != "" {
					c := resolveRef(t, tree, p.Ref).(map[string]any)
					p.Name, p.In = c["name"].(string), c["in"].(string)
				}
				declared[p.In+":"+p.Name] = true
			}
			for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(path, -1) {
				require.True(t, declared["path:"+m[1]], "%s: path parameter %q not declared", where, m[1])
			}
		}
	}
	// Every $ref anywhere resolves.
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, sub := range x {
				if k == "$ref" {
					resolveRef(t, tree, sub.(string))
					continue
				}
				walk(sub)
			}
		case []any:
			for _, sub := range x {
				walk(sub)
			}
		}
	}
	walk(tree)
}

// resolveRef returns what a local $ref ("#/components/...") points at.
func resolveRef(t *testing.T, tree map[string]any, ref string) any {
	t.Helper()
	path, ok := strings.CutPrefix(ref, "#/")
	require.True(t, ok, "$ref %q: only local refs", ref)
	var cur any = tree
	for _, part := range strings.Split(path, "/") {
		m, ok := cur.(map[string]any)
		require.True(t, ok, "$ref %q: %q is not an object", ref, part)
		cur, ok = m[part]
		require.True(t, ok, "$ref %q: no %q", ref, part)
	}
	return cur
}

func TestOpenAPIDocumentIsServed(t *testing.T) {
	t.Parallel()
	s := newRouteServer(t)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.yaml", nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "application/yaml; charset=utf-8", rec.Header().Get("Content-Type"))
	require.Equal(t, string(openAPISpec), rec.Body.String())
}
