package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/errs"
)

func mustCIDR(t *testing.T, s string) *net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// X-Forwarded-For is believed only from a listed proxy; loopback and
// private peers are not trusted unless listed.
func TestClientIPTrustsOnlyListedProxies(t *testing.T) {
	req := func(peer, xff string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = peer + ":4711"
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		r.Header.Set("X-Real-IP", "198.51.100.99")
		return r
	}
	none := ClientIP(nil)
	trusted := ClientIP([]*net.IPNet{mustCIDR(t, "10.0.0.0/8")})
	for _, tc := range []struct {
		name, peer, xff string
		ext             func(*http.Request) string
		want            string
	}{
		{"no proxies: the peer, whatever the headers say", "203.0.113.5", "198.51.100.1", none, "203.0.113.5"},
		{"no proxies: loopback peer with a header", "127.0.0.1", "198.51.100.1", none, "127.0.0.1"},
		{"trusted proxy: the client it names", "10.1.2.3", "198.51.100.1", trusted, "198.51.100.1"},
		{"trusted proxies in a chain: the first untrusted from the right", "10.1.2.3", "192.0.2.66, 198.51.100.1, 10.9.9.9", trusted, "198.51.100.1"},
		{"untrusted peer: its header is ignored", "203.0.113.5", "198.51.100.1", trusted, "203.0.113.5"},
		{"loopback is not trusted unless listed", "127.0.0.1", "198.51.100.1", trusted, "127.0.0.1"},
		{"private ranges are not trusted unless listed", "192.168.1.1", "198.51.100.1", trusted, "192.168.1.1"},
		{"trusted proxy without a header: the proxy", "10.1.2.3", "", trusted, "10.1.2.3"},
	} {
		if got := tc.ext(req(tc.peer, tc.xff)); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestQueryAndBodyLimits(t *testing.T) {
	e := New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	e.GET("/list", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	e.POST("/body", func(c echo.Context) error {
		if _, err := ReadBody(c); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}, BodyLimit(100))
	do := func(method, target string, body io.Reader) (int, string) {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(method, target, body))
		var b ErrorBody
		_ = json.Unmarshal(rec.Body.Bytes(), &b)
		return rec.Code, b.Error.Code
	}
	many := strings.TrimSuffix(strings.Repeat("kind=dispute&", MaxQueryValues), "&")
	for _, tc := range []struct {
		target string
		status int
		code   string
	}{
		{"/list?" + many, 204, ""},
		{"/list?" + many + "&kind=dispute", 400, "query_too_complex"},
		{"/list?q=" + strings.Repeat("x", MaxQueryBytes-2), 204, ""},
		{"/list?q=" + strings.Repeat("x", MaxQueryBytes-1), 400, "query_too_complex"},
	} {
		if status, code := do(http.MethodGet, tc.target, nil); status != tc.status || code != tc.code {
			t.Errorf("GET %.40s… = %d %s, want %d %s", tc.target, status, code, tc.status, tc.code)
		}
	}
	if status, _ := do(http.MethodPost, "/body", strings.NewReader(strings.Repeat("x", 100))); status != 204 {
		t.Errorf("body at the limit: %d", status)
	}
	if status, code := do(http.MethodPost, "/body", strings.NewReader(strings.Repeat("x", 101))); status != 413 || code != "payload_too_large" {
		t.Errorf("body one past the limit: %d %s", status, code)
	}
}

// A write that fails because the database cannot be reached answers 503
// with Retry-After, never 500 (found by make faults: an action's outcome
// could not be recorded during a PostgreSQL cut and the client got 500).
// Other uncoded errors stay 500 "internal".
func TestErrorHandlerDatabaseUnreachableIs503(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("record outcome of action act_1: %w", errors.New("failed to connect to `user=postgres database=test`: dial tcp 127.0.0.1:5432: connect: connection refused")), 503, "unavailable"},
		{fmt.Errorf("insert case: %w", errors.New("unexpected EOF: server closed the connection unexpectedly")), 503, "unavailable"},
		{errors.New("conn closed"), 503, "unavailable"}, // a commit on a connection cut under it
		{errors.New("record action: ERROR: duplicate key value violates unique constraint"), 500, "internal"},
		{errs.Coded(errs.ECONFLICT, "busy", "busy"), 409, "busy"},
	} {
		e := echo.New()
		e.HTTPErrorHandler = ErrorHandler(log)
		rec := httptest.NewRecorder()
		c := e.NewContext(httptest.NewRequest(http.MethodPost, "/", nil), rec)
		e.HTTPErrorHandler(tc.err, c)
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), `"code":"`+tc.code+`"`) {
			t.Errorf("%v: %d %s, want %d %s", tc.err, rec.Code, rec.Body.String(), tc.status, tc.code)
		}
		if tc.status == 503 && rec.Header().Get("Retry-After") == "" {
			t.Errorf("%v: 503 without Retry-After", tc.err)
		}
	}
}
