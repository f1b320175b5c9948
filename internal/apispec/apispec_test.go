package apispec

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
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
	h := Handler(t, e)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s = %d", Path, rec.Code)
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
