package events_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/apispec/apispectest"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/events"
	"github.com/recourse-hq/recourse/internal/httpx"
)

func TestFeed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
		clk := clock.NewManual(t0)
		for i, key := range []string{"a", "b", "a", "c"} {
			typ := events.TypeDisputeDeadlineReminder
			if key == "c" {
				typ = events.TypeDisputeRuleApplied
			}
			var wrote bool
			if err := d.Transact(ctx, func(tx *gorm.DB) (err error) {
				wrote, err = events.Append(ctx, tx, typ, key, "case_"+key, t0, map[string]int{"i": i})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if wrote != (i != 2) {
				t.Fatalf("append %d (%s): wrote = %v", i, key, wrote)
			}
		}
		feed := events.NewFeed(d, clk, 5*time.Second)
		e := echo.New()
		e.HTTPErrorHandler = httpx.ErrorHandler(nil)
		g := e.Group("/api/v1", func(next echo.HandlerFunc) echo.HandlerFunc {
			return func(c echo.Context) error {
				role := auth.Role(c.Request().Header.Get("X-Role"))
				c.SetRequest(c.Request().WithContext(auth.WithPrincipal(c.Request().Context(), auth.Principal{Name: "t", Role: role})))
				return next(c)
			}
		})
		feed.Register(g)
		get := func(role, q string) (int, httpx.List[events.Event]) {
			req := httptest.NewRequest(http.MethodGet, "/api/v1/events"+q, nil)
			req.Header.Set("X-Role", role)
			rec := httptest.NewRecorder()
			apispectest.Handler(t, e).ServeHTTP(rec, req)
			var out httpx.List[events.Event]
			_ = json.Unmarshal(rec.Body.Bytes(), &out)
			return rec.Code, out
		}
		if code, _ := get("agent", ""); code != http.StatusForbidden {
			t.Fatalf("agent: %d", code)
		}
		if _, out := get("supervisor", ""); len(out.Data) != 0 {
			t.Fatalf("unsettled events served: %+v", out.Data)
		}
		clk.Advance(5 * time.Second)
		_, out := get("supervisor", "?limit=1")
		if len(out.Data) != 1 || out.Data[0].Key != "a" || out.NextCursor == nil {
			t.Fatalf("first page = %+v", out)
		}
		_, out = get("supervisor", "?after="+*out.NextCursor)
		if len(out.Data) != 2 || out.Data[0].Key != "b" || out.NextCursor != nil {
			t.Fatalf("second page = %+v", out)
		}
		_, out = get("admin", "?type="+events.TypeDisputeRuleApplied)
		if len(out.Data) != 1 || out.Data[0].Key != "c" || string(out.Data[0].Data) != `{"i":3}` {
			t.Fatalf("by type = %+v", out)
		}
		if code, _ := get("admin", "?after=x"); code != http.StatusBadRequest {
			t.Fatalf("bad after: %d", code)
		}
	})
}
