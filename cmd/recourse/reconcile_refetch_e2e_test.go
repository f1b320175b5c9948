package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// fakeStripeObjects serves GET /v1/events (an empty history) and GET
// /v1/{charges,disputes,…}/{id} from objects, 404 resource_missing for the
// rest; it counts the object reads.
func fakeStripeObjects(t *testing.T, objects map[string]map[string]any) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var reads []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/events" {
			_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "url": "/v1/events", "has_more": false, "data": []any{}})
			return
		}
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v1/"), "/")
		mu.Lock()
		obj, ok := objects[parts[len(parts)-1]]
		reads = append(reads, r.URL.Path)
		mu.Unlock()
		if r.Method != http.MethodGet || len(parts) != 2 || !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such object: '%s'"}}`, r.URL.Path)
			return
		}
		_ = json.NewEncoder(w).Encode(obj)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := reads
		reads = nil
		return out
	}
}

// A chargeback Stripe closed as lost without the event reaching us:
// `recourse reconcile` reads the stale dispute and charge behind the open
// case, the mirror takes Stripe's state and the case moves to lost, as the
// event would have moved it; the report says so (text and JSON), and a
// second run reads nothing and changes nothing.
func TestReconcileRefetchE2E(t *testing.T) {
	now := time.Now().UTC()
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			sfx := fmt.Sprint(now.UnixNano() % 1e6)
			charge := map[string]any{"id": "ch_rf" + sfx, "object": "charge", "amount": 5200, "currency": "usd", "status": "succeeded",
				"paid": true, "disputed": true, "created": now.Add(-50 * time.Hour).Unix()}
			dispute := map[string]any{"id": "dp_rf" + sfx, "object": "dispute", "charge": "ch_rf" + sfx, "amount": 5200, "currency": "usd",
				"status": "needs_response", "reason": "fraudulent", "created": now.Add(-48 * time.Hour).Unix(),
				"evidence_details": map[string]any{"due_by": now.Add(5 * 24 * time.Hour).Unix()}}
			lost := map[string]any{}
			for k, v := range dispute {
				lost[k] = v
			}
			lost["status"] = "lost"
			fake, reads := fakeStripeObjects(t, map[string]map[string]any{"ch_rf" + sfx: charge, "dp_rf" + sfx: lost})
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t),
				"RECOURSE_STRIPE_API_KEY": "sk_test_reconcile", "RECOURSE_STRIPE_API_BASE": fake.URL}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			admin := in.token("admin")
			in.post(stripetest.NewEvent("charge.succeeded", charge, stripetest.WithCreated(now.Add(-50*time.Hour))))
			in.post(stripetest.NewEvent("charge.dispute.created", dispute, stripetest.WithCreated(now.Add(-48*time.Hour))))
			in.drained(admin)
			if cs := in.caseOf(admin, "dispute", "dp_rf"+sfx); cs["status"] != "open" {
				t.Fatalf("case before: %v", cs)
			}
			reads()

			out := in.mustCLI("reconcile", "--since", "1h")
			for _, want := range []string{"stale       2\n", "checked     2\n", "changed     1 ", "fixed       1 ", "failed      0\n",
				"changed: dispute dp_rf" + sfx + ": needs_response → lost (1 case(s))"} {
				if !strings.Contains(out, want) {
					t.Fatalf("reconcile said (want %q):\n%s", want, out)
				}
			}
			if got := reads(); len(got) != 2 {
				t.Fatalf("Stripe reads %v", got)
			}
			cs := in.caseOf(admin, "dispute", "dp_rf"+sfx)
			if cs["state"] != "lost" || cs["status"] != "closed" {
				t.Fatalf("case after the read: %v", cs)
			}

			var rep struct {
				Missing int `json:"missing"`
				Refetch struct {
					Stale, Checked, Changed, Failed int
				} `json:"refetch"`
			}
			if err := json.Unmarshal([]byte(in.mustCLI("reconcile", "--json")), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Missing != 0 || rep.Refetch.Stale != 0 || rep.Refetch.Changed != 0 || rep.Refetch.Failed != 0 {
				t.Fatalf("second run: %+v", rep)
			}
			if got := reads(); len(got) != 0 {
				t.Fatalf("second run read %v", got)
			}
			code, audit := in.do("GET", "/api/v1/audit?action=webhooks.reconcile", admin, nil, nil)
			if code != 200 || len(audit["data"].([]any)) != 2 || !strings.Contains(fmt.Sprint(audit["data"]), "changed 1, fixed 1") {
				t.Fatalf("audit: %d %v", code, audit)
			}
		})
	}
}
