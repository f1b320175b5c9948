package apispec

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

func TestDocumentValidates(t *testing.T) {
	doc, err := Document()
	if err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	ops := 0
	for _, item := range doc.Paths.Map() {
		ops += len(item.Operations())
	}
	if ops < 60 {
		t.Errorf("only %d operations documented", ops)
	}
}

func TestServedDocumentIsTheEmbeddedOne(t *testing.T) {
	e := echo.New()
	Register(e)
	req := httptest.NewRequest(http.MethodGet, Path, nil)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s = %d", Path, rec.Code)
	}
	if err := Validate(Exchange{Request: req, Status: rec.Code, Header: rec.Header(), ResponseBody: rec.Body.Bytes()}, true); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["openapi"] != "3.1.0" {
		t.Errorf("served openapi = %v", got["openapi"])
	}
	paths, _ := got["paths"].(map[string]any)
	if _, ok := paths[Path]; !ok {
		t.Errorf("the served document does not describe %s itself", Path)
	}
}

// TestEveryOperationIsDescribed holds the document to its conventions, so a
// path added later (the reports) follows them: an operationId (unique), a
// summary and a tag; a success answer; under /api/v1 and /webhooks the error
// envelope as `default` and the rate limit's 429 (TooManyRequests, with
// Retry-After); under /api/v1 the bearer token unless the operation says it
// is public.
func TestEveryOperationIsDescribed(t *testing.T) {
	doc, err := Document()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s: no operationId", name)
			} else if other, dup := ids[op.OperationID]; dup {
				t.Errorf("%s: operationId %q is %s's too", name, op.OperationID, other)
			}
			ids[op.OperationID] = name
			if op.Summary == "" || len(op.Tags) == 0 {
				t.Errorf("%s: want a summary and a tag", name)
			}
			success := false
			for code := range op.Responses.Map() {
				success = success || strings.HasPrefix(code, "2")
			}
			if !success {
				t.Errorf("%s: no 2xx answer", name)
			}
			api := strings.HasPrefix(path, "/api/v1/") || strings.HasPrefix(path, "/webhooks/")
			if d := op.Responses.Default(); api && (d == nil || d.Ref != "#/components/responses/Error") {
				t.Errorf("%s: want default: $ref '#/components/responses/Error'", name)
			}
			if r := op.Responses.Value("429"); api && path != Path && (r == nil || r.Ref != "#/components/responses/TooManyRequests") {
				t.Errorf("%s: rate-limited, want \"429\": $ref '#/components/responses/TooManyRequests'", name)
			}
			public := op.Security != nil && len(*op.Security) == 0
			if strings.HasPrefix(path, "/api/v1/") && public && path != Path {
				t.Errorf("%s: an /api/v1 operation without the bearer token", name)
			}
		}
	}
}
