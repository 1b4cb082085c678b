package dashboard

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

// templatesWithout copies the embedded templates, leaving out the files
// named in drop.
func templatesWithout(t *testing.T, drop ...string) fstest.MapFS {
	t.Helper()
	out := fstest.MapFS{}
	err := fs.WalkDir(templateFS, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || slices.Contains(drop, p) {
			return err
		}
		b, err := fs.ReadFile(templateFS, p)
		if err != nil {
			return err
		}
		out[p] = &fstest.MapFile{Data: b, Mode: 0o644}
		return nil
	})
	require.NoError(t, err)
	return out
}

// TestBootFailsWithoutAView removes each view's template in turn (login.html
// among them): the renderer New builds must refuse to start and name it.
func TestBootFailsWithoutAView(t *testing.T) {
	_, err := newRenderer(templatesWithout(t))
	require.NoError(t, err, "the full set of templates boots")
	for v := range numViews {
		t.Run(v.String(), func(t *testing.T) {
			_, err := newRenderer(templatesWithout(t, "templates/views/"+v.String()+".html"))
			require.ErrorContains(t, err, "missing views: "+v.String())
		})
	}
}

// TestViewsAreTheTemplates checks that templates/views holds exactly the
// views of view.go: a template no view names would never be rendered.
func TestViewsAreTheTemplates(t *testing.T) {
	files, err := fs.Glob(templateFS, "templates/views/*")
	require.NoError(t, err)
	var onDisk []string
	for _, f := range files {
		require.True(t, strings.HasSuffix(f, ".html"), "%s: views are .html files", f)
		onDisk = append(onDisk, strings.TrimSuffix(path.Base(f), ".html"))
	}
	var declared []string
	for v := range numViews {
		require.NotEmpty(t, v.String(), "view %d has no name in viewNames", v)
		declared = append(declared, v.String())
	}
	slices.Sort(onDisk)
	slices.Sort(declared)
	require.Equal(t, declared, onDisk, "templates/views and the views of view.go differ")
}

// TestEveryViewIsRendered checks that every view constant is used outside
// view.go, where the handlers render it: the boot check requires no view
// that no handler renders.
func TestEveryViewIsRendered(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	constNames := viewConstNames(t)
	used := map[string]bool{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || name == "view.go" {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok {
				used[id.Name] = true
			}
			return true
		})
	}
	require.Len(t, constNames, int(numViews))
	for _, name := range constNames {
		require.True(t, used[name], "view constant %s is rendered by no handler", name)
	}
}

// viewConstNames returns the names of the view constants declared in
// view.go, in order.
func viewConstNames(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "view.go", nil, 0)
	require.NoError(t, err)
	var names []string
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			for _, n := range s.(*ast.ValueSpec).Names {
				if n.Name != "numViews" {
					names = append(names, n.Name)
				}
			}
		}
	}
	return names
}
