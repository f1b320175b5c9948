// Package apispec holds Recourse's API contract: the OpenAPI 3.1 document of
// every route under /api/v1 and /webhooks (and /healthz, /readyz, /metrics),
// embedded in the binary and served at GET /api/v1/openapi.json, and the
// validator every HTTP test runs its requests and responses through
// (Validate; the test helpers are in apispectest), so the document cannot
// drift from the code.
//
// The document is written by hand in openapi.yaml. A route added to the
// service must be added there too: cmd/recourse's TestOpenAPICoversEveryRoute
// fails for a route the document lacks, and for a documented path the
// router lacks.
package apispec

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
	"gopkg.in/yaml.v3"
)

// Path is where the document is served.
const Path = "/api/v1/openapi.json"

//go:embed openapi.yaml
var source []byte

var (
	loadOnce sync.Once
	loaded   *openapi3.T
	asJSON   []byte
	loadErr  error
)

func load() {
	var tree any
	if err := yaml.Unmarshal(source, &tree); err != nil {
		loadErr = fmt.Errorf("openapi.yaml: %w", err)
		return
	}
	if asJSON, loadErr = json.Marshal(tree); loadErr != nil {
		loadErr = fmt.Errorf("openapi.yaml as JSON: %w", loadErr)
		return
	}
	l := openapi3.NewLoader()
	doc, err := l.LoadFromData(asJSON)
	if err != nil {
		loadErr = fmt.Errorf("load openapi.yaml: %w", err)
		return
	}
	if !doc.IsOpenAPI31OrLater() {
		loadErr = fmt.Errorf("openapi.yaml is OpenAPI %s, want 3.1", doc.OpenAPI)
		return
	}
	if err := doc.Validate(context.Background()); err != nil {
		loadErr = fmt.Errorf("openapi.yaml does not validate: %w", err)
		return
	}
	loaded = doc
}

// Document returns the parsed document. It is loaded and validated (as
// OpenAPI 3.1) once; an error means the embedded file is broken, which
// TestDocumentValidates catches before any build ships.
func Document() (*openapi3.T, error) {
	loadOnce.Do(load)
	return loaded, loadErr
}

// JSON returns the document as JSON, what GET /api/v1/openapi.json serves.
func JSON() ([]byte, error) {
	loadOnce.Do(load)
	return asJSON, loadErr
}

// Register mounts GET /api/v1/openapi.json on e. It is public, outside the
// authenticated /api/v1 group: the contract is not a secret, and clients
// need it before they hold a token.
func Register(e *echo.Echo) {
	e.GET(Path, func(c echo.Context) error {
		b, err := JSON()
		if err != nil {
			return err
		}
		c.Response().Header().Set("Cache-Control", "public, max-age=300")
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
	})
}
