package httpx

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/errs"
)

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
