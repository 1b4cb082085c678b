package dashboard

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPISpec is the OpenAPI 3.1 description of /api/v1; a test keeps it in
// step with the routes registered in server.go.
//
//go:embed openapi.yaml
var openAPISpec []byte

// serveOpenAPI answers GET /api/v1/openapi.yaml with the API's description.
// It needs no sign-in: the document is public (it is in the repository).
func (h *handler) serveOpenAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml; charset=utf-8", openAPISpec)
}
