package billing

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/apispec/apispectest"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// api serves the billing routes the way cmd/recourse mounts them.
type api struct {
	t     *testing.T
	srv   *httptest.Server
	token string
}

func newAPI(t *testing.T, f *fixture) *api {
	t.Helper()
	tokens := auth.NewTokenStore(f.d, f.clock)
	secret, _, err := tokens.Create(context.Background(), "agent one", auth.RoleAgent)
	if err != nil {
		t.Fatal(err)
	}
	e := httpx.New(httpx.Options{Logger: slog.New(slog.DiscardHandler)})
	g := e.Group("/api/v1", auth.Middleware(tokens))
	f.store.Register(g)
	srv := httptest.NewServer(apispectest.Handler(t, e))
	t.Cleanup(srv.Close)
	return &api{t: t, srv: srv, token: secret}
}

// get returns the status and decoded JSON body of GET path.
func (a *api) get(path, token string) (int, map[string]any) {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		a.t.Fatalf("GET %s: body is not a JSON object: %s", path, raw)
	}
	return res.StatusCode, body
}

func TestHTTP(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		a := newAPI(t, f)

		evs := f.gen.Chargeback(t0, stripetest.ChargebackOptions{Brand: "visa", Reason: "subscription_canceled", Won: true})
		f.applyAll(evs)
		cust := evs[0].Object["id"].(string)
		sub := firstOf(t, evs, "customer.subscription.created").Object["id"].(string)
		inv := firstOf(t, evs, "invoice.paid").Object["id"].(string)
		charge := firstOf(t, evs, "charge.succeeded").Object["id"].(string)
		dispute := firstOf(t, evs, "charge.dispute.created").Object["id"].(string)
		refunds := f.gen.RefundIssued(t0)
		f.applyAll(refunds)
		refund := firstOf(t, refunds, "refund.created").Object["id"].(string)
		efws := f.gen.FraudWarningRefunded(t0)
		f.applyAll(efws)
		efw := firstOf(t, efws, "radar.early_fraud_warning.created").Object["id"].(string)

		routes := map[string]string{
			"/customers/":            cust,
			"/subscriptions/":        sub,
			"/invoices/":             inv,
			"/charges/":              charge,
			"/refunds/":              refund,
			"/disputes/":             dispute,
			"/early-fraud-warnings/": efw,
		}
		for prefix, id := range routes {
			path := "/api/v1" + prefix + id
			if code, body := a.get(path, ""); code != http.StatusUnauthorized {
				t.Errorf("GET %s without a token = %d %v, want 401", path, code, body)
			}
			if code, body := a.get(path, "rct_not_a_real_token"); code != http.StatusUnauthorized {
				t.Errorf("GET %s with a bad token = %d %v, want 401", path, code, body)
			}
			code, body := a.get(path, a.token)
			if code != http.StatusOK {
				t.Errorf("GET %s = %d %v, want 200", path, code, body)
				continue
			}
			eq(t, "GET "+path+" id", body["id"], any(id))
			if _, ok := body["event_id"].(string); !ok {
				t.Errorf("GET %s: version not flattened into event_id: %v", path, body)
			}
			code, body = a.get("/api/v1"+prefix+"nope_unknown", a.token)
			if code != http.StatusNotFound {
				t.Errorf("GET %snope_unknown = %d, want 404", prefix, code)
			} else if e, _ := body["error"].(map[string]any); e["code"] != "not_found" {
				t.Errorf("404 body = %v", body)
			}
		}

		// The customer comes with its subscriptions.
		_, body := a.get("/api/v1/customers/"+cust, a.token)
		eq(t, "mirrored", body["mirrored"], any(true))
		subs, _ := body["subscriptions"].([]any)
		if len(subs) != 1 || subs[0].(map[string]any)["id"] != sub {
			t.Errorf("subscriptions = %v", body["subscriptions"])
		}
		_, body = a.get("/api/v1/disputes/"+dispute, a.token)
		eq(t, "dispute status", body["status"], any("won"))
		eq(t, "dispute customer", body["customer"], any(cust))
		_, body = a.get("/api/v1/charges/"+charge, a.token)
		eq(t, "card last4 only", len(body["card_last4"].(string)), 4)

		// The timeline: list shape, newest first, cursor pagination.
		code, body := a.get("/api/v1/customers/"+cust+"/timeline?limit=3", a.token)
		eq(t, "timeline status", code, http.StatusOK)
		data, _ := body["data"].([]any)
		eq(t, "page size", len(data), 3)
		next, _ := body["next_cursor"].(string)
		if next == "" {
			t.Fatalf("no next_cursor: %v", body)
		}
		first := data[0].(map[string]any)
		eq(t, "newest first", first["event_id"], any(evs[len(evs)-1].ID))
		for _, k := range []string{"id", "customer", "at", "event_id", "event_type", "object", "object_id", "summary", "severity"} {
			if _, ok := first[k]; !ok {
				t.Errorf("timeline entry lacks %q: %v", k, first)
			}
		}
		total := len(data)
		for next != "" {
			code, body = a.get("/api/v1/customers/"+cust+"/timeline?limit=3&cursor="+next, a.token)
			if code != http.StatusOK {
				t.Fatalf("next page = %d %v", code, body)
			}
			total += len(body["data"].([]any))
			next, _ = body["next_cursor"].(string)
		}
		eq(t, "whole timeline", total, len(evs))
		if _, ok := body["next_cursor"]; !ok {
			t.Error("last page must say next_cursor: null")
		}

		for path, want := range map[string]int{
			"/api/v1/customers/" + cust + "/timeline?limit=0":         http.StatusBadRequest,
			"/api/v1/customers/" + cust + "/timeline?limit=201":       http.StatusBadRequest,
			"/api/v1/customers/" + cust + "/timeline?cursor=%21%21":   http.StatusBadRequest,
			"/api/v1/customers/nope_unknown/timeline":                 http.StatusNotFound,
			"/api/v1/customers/" + strings.Repeat("x", 300):           http.StatusBadRequest,
			"/api/v1/customers/" + cust + "/timeline?limit=200":       http.StatusOK,
			"/api/v1/customers/" + cust + "/timeline?limit=1&cursor=": http.StatusOK,
		} {
			if code, body := a.get(path, a.token); code != want {
				t.Errorf("GET %s = %d %v, want %d", path, code, body, want)
			}
		}
		if code, _ := a.get("/api/v1/customers/"+cust+"/timeline", ""); code != http.StatusUnauthorized {
			t.Errorf("timeline without a token = %d, want 401", code)
		}

		// A customer only named by a subscription so far is shown, unmirrored.
		f.apply(f.event("customer.subscription.created", f.gen.Subscription(stripetest.SubscriptionParams{ID: "sub_Orphan", Customer: "cus_NotYet", Plan: proPlan}), t0.Add(time.Hour)))
		code, body = a.get("/api/v1/customers/cus_NotYet", a.token)
		eq(t, "unmirrored customer status", code, http.StatusOK)
		eq(t, "unmirrored", body["mirrored"], any(false))
		eq(t, "unmirrored subscriptions", len(body["subscriptions"].([]any)), 1)
		code, body = a.get("/api/v1/customers/cus_NotYet/timeline", a.token)
		eq(t, "unmirrored customer timeline", code, http.StatusOK)
		eq(t, "unmirrored customer facts", len(body["data"].([]any)), 1)
	})
}
