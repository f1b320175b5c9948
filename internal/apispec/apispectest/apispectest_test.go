package apispectest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/apispec"
)

// fakeT records what the helpers report instead of failing the test.
type fakeT struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, format)
}

// server answers /healthz with body, and a test-only /api/v1/probe.
func server(body string) *echo.Echo {
	e := echo.New()
	e.GET("/healthz", func(c echo.Context) error { return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, []byte(body)) })
	e.GET("/api/v1/probe", func(c echo.Context) error { return c.String(http.StatusOK, "hi") })
	e.GET("/login", func(c echo.Context) error { return c.HTML(http.StatusOK, "<p>") })
	return e
}

func TestHandlerAndTransportReportDrift(t *testing.T) {
	for _, tc := range []struct {
		name, body, path string
		opts             []Option
		fails            bool
	}{
		{"a documented answer", `{"status":"ok"}`, "/healthz", nil, false},
		{"an answer off the document", `{"status":"fine"}`, "/healthz", nil, true},
		{"a route the document lacks", `{}`, "/api/v1/probe", nil, true},
		{"a test-only route skipped", `{}`, "/api/v1/probe", []Option{Skip("/api/v1/probe")}, false},
		{"the console is not the API", `{}`, "/login", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ft := &fakeT{TB: t}
			rec := httptest.NewRecorder()
			Handler(ft, server(tc.body), tc.opts...).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if got := len(ft.errs) > 0; got != tc.fails {
				t.Fatalf("Handler: failed = %v, want %v (%v)", got, tc.fails, ft.errs)
			}
			srv := httptest.NewServer(server(tc.body))
			defer srv.Close()
			ft = &fakeT{TB: t}
			resp, err := (&http.Client{Transport: Transport(ft, nil, tc.opts...)}).Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := len(ft.errs) > 0; got != tc.fails {
				t.Fatalf("Transport: failed = %v, want %v (%v)", got, tc.fails, ft.errs)
			}
		})
	}
}

func TestUncheckedSkipsOnlyTheRequest(t *testing.T) {
	req := httptest.NewRequest("POST", "/api/v1/cases", strings.NewReader(`{"kind":"nope","title":"t"}`))
	resp := &http.Response{StatusCode: 201, Header: http.Header{"Content-Type": {"application/json"}}}
	ft := &fakeT{TB: t}
	Check(ft, req, []byte(`{"kind":"nope","title":"t"}`), resp, []byte(`{"id":"case_1"}`))
	if len(ft.errs) != 1 {
		t.Fatalf("checked: %v", ft.errs)
	}
	ex := apispec.Exchange{Request: Unchecked(req), RequestBody: []byte(`{"kind":"nope","title":"t"}`), Status: 201, Header: resp.Header, ResponseBody: []byte(`{"id":"case_1"}`)}
	if err := apispec.Validate(ex, !unchecked(ex.Request)); err == nil || !strings.Contains(err.Error(), "response 201") {
		t.Fatalf("want only the response checked (and failing: it is not a whole case), got %v", err)
	}
}
