package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// fakeEvents serves GET /v1/events the way Stripe does — newest first,
// filtered by created[gte]/created[lt], `limit` a page, has_more and
// starting_after — over a fixed history.
func fakeEvents(t *testing.T, history []stripetest.Event) *httptest.Server {
	t.Helper()
	sorted := append([]stripetest.Event(nil), history...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Created.After(sorted[j].Created) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/events" || r.Method != http.MethodGet {
			http.Error(w, `{"error":{"type":"invalid_request_error","message":"not here"}}`, http.StatusNotFound)
			return
		}
		q := r.URL.Query()
		gte, _ := strconv.ParseInt(q.Get("created[gte]"), 10, 64)
		lt, _ := strconv.ParseInt(q.Get("created[lt]"), 10, 64)
		limit, _ := strconv.Atoi(q.Get("limit"))
		if limit <= 0 {
			limit = 10
		}
		after := q.Get("starting_after")
		var page []json.RawMessage
		more, skipping := false, after != ""
		for _, e := range sorted {
			if skipping {
				skipping = e.ID != after
				continue
			}
			if c := e.Created.Unix(); c < gte || (lt > 0 && c >= lt) {
				continue
			}
			if len(page) == limit {
				more = true
				break
			}
			page = append(page, e.Payload)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "url": "/v1/events", "has_more": more, "data": page})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Stripe gave up on some deliveries of a chargeback's story; `recourse
// reconcile` lists Stripe's events, feeds the missing ones to the running
// service's inbox, and the worker applies them: every event of the story
// processed once, the dispute case as a full delivery leaves it. A second
// run from the reconciled point finds nothing missing; both are audited.
func TestReconcileE2E(t *testing.T) {
	now := time.Now().UTC()
	var story []stripetest.Event
	// Inside Stripe's 30 days: a renewal-free chargeback begun 29 days ago.
	for _, e := range stripetest.New(41).Chargeback(now.Add(-29*24*time.Hour), stripetest.ChargebackOptions{Brand: "visa", Reason: "fraudulent"}) {
		if e.Created.Before(now.Add(-time.Minute)) {
			story = append(story, e)
		}
	}
	closed := false
	var dispute map[string]any
	for _, e := range story {
		switch e.Type {
		case "charge.dispute.created":
			dispute = e.Object
		case "charge.dispute.closed":
			closed = true
		}
	}
	if len(story) < 6 || dispute == nil {
		t.Fatalf("the story has %d past events and no dispute", len(story))
	}
	fake := fakeEvents(t, story)
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t),
				"RECOURSE_STRIPE_API_KEY": "sk_test_reconcile", "RECOURSE_STRIPE_API_BASE": fake.URL}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			admin := in.token("admin")
			// Deliveries of every third event, the dispute's opening among
			// them, never arrived.
			lost := map[string]bool{}
			for i, e := range story {
				if i%3 == 1 || e.Type == "charge.dispute.created" {
					lost[e.ID] = true
					continue
				}
				in.post(e)
			}
			in.drained(admin)
			for id := range lost {
				if code, _ := in.do("GET", "/api/v1/webhook-events/"+id, admin, nil, nil); code != 404 {
					t.Fatalf("lost event %s is in the inbox: %d", id, code)
				}
			}

			out := in.mustCLI("reconcile", "--since", "720h")
			if !strings.Contains(out, fmt.Sprintf("listed   %d\n", len(story))) ||
				!strings.Contains(out, fmt.Sprintf("missing  %d ", len(lost))) ||
				!strings.Contains(out, fmt.Sprintf("present  %d\n", len(story)-len(lost))) {
				t.Fatalf("reconcile said:\n%s", out)
			}
			in.drained(admin)
			for _, e := range story {
				code, ev := in.do("GET", "/api/v1/webhook-events/"+e.ID, admin, nil, nil)
				if code != 200 || (ev["status"] != "processed" && ev["status"] != "ignored") {
					t.Fatalf("%s (%s) after reconcile: %d %v", e.ID, e.Type, code, ev)
				}
			}
			cs := in.caseOf(admin, "dispute", dispute["id"].(string))
			if closed && cs["status"] != "closed" || !closed && cs["status"] != "open" {
				t.Fatalf("the chargeback's case (closed at Stripe: %v): %v", closed, cs)
			}

			// From the reconciled point: nothing missing.
			var rep map[string]any
			if err := json.Unmarshal([]byte(in.mustCLI("reconcile", "--json")), &rep); err != nil {
				t.Fatal(err)
			}
			if rep["missing"] != float64(0) {
				t.Fatalf("second run: %v", rep)
			}
			code, audit := in.do("GET", "/api/v1/audit?action=webhooks.reconcile", admin, nil, nil)
			if code != 200 || len(audit["data"].([]any)) != 2 {
				t.Fatalf("audit: %d %v", code, audit)
			}
			// A bad --since is refused before anything runs.
			if _, _, err := in.cli("reconcile", "--since", "yesterday"); err == nil || !strings.Contains(err.Error(), "--since") {
				t.Fatalf("--since yesterday: %v", err)
			}
		})
	}
}
