package dashboard

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
)

//go:embed static
var staticFS embed.FS

// Content types of the embedded assets, by extension; anything else is
// served as application/octet-stream.
var assetTypes = map[string]string{
	".css": "text/css; charset=utf-8",
	".js":  "text/javascript; charset=utf-8",
	".svg": "image/svg+xml",
	".txt": "text/plain; charset=utf-8",
	".png": "image/png",
	".ico": "image/x-icon",
}

// asset is one embedded file with its content hash.
type asset struct {
	body        []byte
	hash        string // first 16 hex digits of its SHA-256
	contentType string
}

// assets are the embedded static files, hashed once at start. Pages link
// them as /static/NAME?v=HASH (the template function "asset"): a URL with
// the current hash is cached for a year, any other is revalidated.
type assets struct {
	files map[string]asset
}

func loadAssets() (*assets, error) {
	a := &assets{files: map[string]asset{}}
	err := fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct, ok := assetTypes[path.Ext(p)]
		if !ok {
			ct = "application/octet-stream"
		}
		a.files[strings.TrimPrefix(p, "static/")] = asset{body: b, hash: hex.EncodeToString(sum[:8]), contentType: ct}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load static assets: %w", err)
	}
	return a, nil
}

// url returns the versioned URL of the asset name, or an error for an
// unknown name (templates call it at render time: a test of each page
// catches a typo).
func (a *assets) url(name string) (string, error) {
	f, ok := a.files[name]
	if !ok {
		return "", fmt.Errorf("asset %q: no such file in static/", name)
	}
	return "/static/" + name + "?v=" + f.hash, nil
}

// serveStatic serves an embedded asset with its content type, an ETag and
// a long cache lifetime when the URL carries its current hash.
func (h *handler) serveStatic(c echo.Context) error {
	name := c.Param("*")
	f, ok := h.render.assets.files[name]
	if !ok {
		return echo.NewHTTPError(http.StatusNotFound, "no such asset")
	}
	hdr := c.Response().Header()
	etag := `"` + f.hash + `"`
	hdr.Set(echo.HeaderContentType, f.contentType)
	hdr.Set("ETag", etag)
	hdr.Set("X-Content-Type-Options", "nosniff")
	if c.QueryParam("v") == f.hash {
		hdr.Set(echo.HeaderCacheControl, "public, max-age=31536000, immutable")
	} else {
		hdr.Set(echo.HeaderCacheControl, "no-cache")
	}
	if match := c.Request().Header.Get("If-None-Match"); match != "" && strings.Contains(match, etag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, f.contentType, f.body)
}
