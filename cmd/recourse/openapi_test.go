package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/recourse-hq/recourse/internal/apispec"
	"github.com/recourse-hq/recourse/internal/apispec/apispectest"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/config"
)

// echoParam is an Echo path parameter (:id), written {id} in OpenAPI.
var echoParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// TestOpenAPICoversEveryRoute builds the service as `serve` does and compares
// its router with the OpenAPI document (internal/apispec/openapi.yaml): every
// route under /api/v1 and /webhooks, and /healthz, /readyz and /metrics, must
// be documented with its method, and every documented operation must be
// routed. A route added without its document, or a document left behind by
// a removed route, fails here.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"RECOURSE_SQLITE_PATH":        filepath.Join(t.TempDir(), "routes.db"),
		"RECOURSE_ESCALATION_SOURCES": "inapp:generic:whsec_" + "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0",
	}
	cfg, err := config.Load([]string{}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newService(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), clock.System{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()

	routed := map[string]bool{}
	for _, r := range s.echo.Routes() {
		if !apispec.Documented(r.Path) || strings.HasSuffix(r.Path, "*") || !httpMethods[r.Method] {
			continue // the console, and Echo's catch-alls (echo_route_not_found) for groups
		}
		routed[r.Method+" "+echoParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	doc, err := apispec.Document()
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+normalize(path)] = true
		}
	}
	// Compare with parameter names ignored: Echo's names need not be the
	// document's (both sides are normalized to {}).
	norm := map[string]bool{}
	for k := range routed {
		norm[normalize(k)] = true
	}
	var missing, stale []string
	for k := range norm {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !norm[k] {
			stale = append(stale, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	for _, k := range missing {
		t.Errorf("route %s is not in internal/apispec/openapi.yaml: document it", k)
	}
	for _, k := range stale {
		t.Errorf("openapi.yaml documents %s, which the router does not serve", k)
	}
	if len(norm) < 60 {
		t.Errorf("only %d routes found: is the router built as serve builds it?", len(norm))
	}
	t.Logf("%d routes, all documented", len(norm))

	rec := httptest.NewRecorder()
	apispectest.Handler(t, s.echo).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("GET /healthz = %d", rec.Code)
	}

	// The document is public: served without a token, as embedded.
	rec = httptest.NewRecorder()
	apispectest.Handler(t, s.echo).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, apispec.Path, nil))
	want, _ := apispec.JSON()
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), want) {
		t.Errorf("GET %s without a token = %d, %d bytes; want 200 and the embedded document", apispec.Path, rec.Code, rec.Body.Len())
	}
}

var httpMethods = map[string]bool{http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true}

var anyParam = regexp.MustCompile(`\{[^}]*\}`)

func normalize(s string) string { return anyParam.ReplaceAllString(s, "{}") }
