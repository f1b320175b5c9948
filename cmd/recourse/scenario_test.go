package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// outcome is what a story must leave behind: one case of a kind, in a
// status with a resolution.
type outcome struct{ kind, status, resolution string }

func (o outcome) String() string { return o.kind + "/" + o.status + "/" + o.resolution }

// trialConvertsAfterReminder: a trial without a payment method gets its
// reminder (opening a trial_conversion case), then the customer adds a card
// and the trial converts.
func trialConvertsAfterReminder(g *stripetest.Generator, start time.Time) []stripetest.Event {
	evs := g.TrialLapsesCanceled(start)
	var out []stripetest.Event
	for _, e := range evs {
		if e.Type == "customer.subscription.deleted" {
			sub := map[string]any{}
			for k, v := range e.Object {
				sub[k] = v
			}
			sub["status"], sub["canceled_at"], sub["ended_at"] = "active", nil, nil
			sub["default_payment_method"] = g.NewID("pm_")
			out = append(out, g.NewEvent("customer.subscription.updated", sub, stripetest.WithCreated(e.Created),
				stripetest.WithPreviousAttributes(map[string]any{"status": "trialing", "default_payment_method": nil})))
			continue
		}
		out = append(out, e)
	}
	return out
}

var stories = []struct {
	name string
	run  func(g *stripetest.Generator, start time.Time) []stripetest.Event
	want []outcome
}{
	{"trial converts after reminder", trialConvertsAfterReminder, []outcome{{"trial_conversion", "closed", "converted"}}},
	{"trial lapses, canceled", (*stripetest.Generator).TrialLapsesCanceled, []outcome{{"trial_conversion", "closed", "lost"}}},
	{"trial lapses, paused", (*stripetest.Generator).TrialLapsesPaused, []outcome{{"trial_conversion", "closed", "lost"}}},
	{"trial with a card converts", (*stripetest.Generator).TrialConverts, nil},
	{"renewal fails then recovers", func(g *stripetest.Generator, t time.Time) []stripetest.Event { return g.RenewalRecovers(t, 2) }, []outcome{{"payment_failure", "closed", "recovered"}}},
	{"renewal churns, unpaid", (*stripetest.Generator).RenewalChurnsUnpaid, []outcome{{"payment_failure", "closed", "churned"}}},
	{"renewal churns, canceled", (*stripetest.Generator).RenewalChurnsCanceled, []outcome{{"payment_failure", "closed", "churned"}}},
	{"cancellation retained", (*stripetest.Generator).CancelRetained, []outcome{{"cancellation", "closed", "retained"}}},
	{"cancellation goes through", (*stripetest.Generator).CancelChurns, []outcome{{"cancellation", "closed", "canceled"}}},
	{"refund fails", (*stripetest.Generator).RefundFailed, []outcome{{"refund_failure", "open", ""}}},
	{"refund succeeds", (*stripetest.Generator).RefundIssued, nil},
	{"fraud warning refunded", (*stripetest.Generator).FraudWarningRefunded, []outcome{{"fraud_warning", "closed", "refunded"}}},
	{"fraud warning then chargeback", (*stripetest.Generator).FraudWarningDisputed, []outcome{{"dispute", "closed", "lost"}, {"fraud_warning", "closed", "disputed"}}},
	{"inquiry closed", (*stripetest.Generator).InquiryClosed, []outcome{{"dispute", "closed", "warning_closed"}}},
	{"chargeback won", (*stripetest.Generator).ChargebackWon, []outcome{{"dispute", "closed", "won"}}},
	{"chargeback lost", (*stripetest.Generator).ChargebackLost, []outcome{{"dispute", "closed", "lost"}}},
}

func customerOf(evs []stripetest.Event) string {
	for _, e := range evs {
		if e.Object["object"] == "customer" {
			return e.Object["id"].(string)
		}
		if c, ok := e.Object["customer"].(string); ok && c != "" {
			return c
		}
	}
	return ""
}

func (in *instance) post(e stripetest.Event) {
	in.t.Helper()
	req, err := stripetest.NewWebhookRequest(context.Background(), in.url+"/webhooks/stripe", e.Payload, testSecret, time.Now())
	if err != nil {
		in.t.Fatal(err)
	}
	resp, err := in.api.Do(req)
	if err != nil {
		in.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		in.t.Fatalf("deliver %s (%s): %d", e.ID, e.Type, resp.StatusCode)
	}
}

func (in *instance) drained(token string) {
	in.t.Helper()
	for i := 0; i < 500; i++ {
		code, m := in.do("GET", "/api/v1/webhook-events?status=pending&limit=1", token, nil, nil)
		if code == 200 && len(m["data"].([]any)) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	in.t.Fatal("inbox never drained")
}

// Every row of the case table, from opening to closing, over HTTP with
// signed Stripe-shaped events: in order, in reverse (updates before
// creates), and shuffled with every event delivered twice.
func TestCaseScenariosOverHTTP(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t), "RECOURSE_WORKER_CONCURRENCY": "4"}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			admin := in.token("admin")
			g := stripetest.New(7)
			rng := rand.New(rand.NewPCG(7, 11))
			start := time.Now().Add(-60 * 24 * time.Hour).UTC()
			type run struct {
				story, order, customer string
				want                   []outcome
				events                 []stripetest.Event
			}
			var runs []run
			for _, st := range stories {
				for _, order := range []string{"in order", "reversed", "shuffled twice"} {
					evs := st.run(g, start)
					r := run{story: st.name, order: order, customer: customerOf(evs), want: st.want, events: evs}
					switch order {
					case "reversed":
						rev := make([]stripetest.Event, len(evs))
						for i, e := range evs {
							rev[len(evs)-1-i] = e
						}
						r.events = rev
					case "shuffled twice":
						both := append(append([]stripetest.Event(nil), evs...), evs...)
						rng.Shuffle(len(both), func(i, j int) { both[i], both[j] = both[j], both[i] })
						r.events = both
					}
					runs = append(runs, r)
				}
			}
			// One story at a time per customer, delivered one by one so the
			// delivery order is the order the worker sees.
			for _, r := range runs {
				for _, e := range r.events {
					in.post(e)
				}
				in.drained(admin)
			}
			for _, r := range runs {
				code, m := in.do("GET", "/api/v1/cases?limit=200&customer="+url.QueryEscape(r.customer), admin, nil, nil)
				if code != 200 {
					t.Fatalf("%s: list: %d %v", r.story, code, m)
				}
				var got []string
				for _, x := range m["data"].([]any) {
					c := x.(map[string]any)
					res := ""
					if c["resolution"] != nil {
						res = c["resolution"].(string)
					}
					got = append(got, outcome{c["kind"].(string), c["status"].(string), res}.String())
					checkTimeline(t, in, admin, c, r.story+" "+r.order)
				}
				var want []string
				for _, o := range r.want {
					want = append(want, o.String())
				}
				sort.Strings(got)
				sort.Strings(want)
				if strings.Join(got, ",") != strings.Join(want, ",") {
					t.Errorf("%s (%s, %s): cases %v, want %v", r.story, r.order, r.customer, got, want)
				}
			}
		})
	}
}

// checkTimeline: oldest first, every entry has an actor and a summary, and
// webhook entries name their event; no event's fact appears twice.
func checkTimeline(t *testing.T, in *instance, token string, c map[string]any, what string) {
	t.Helper()
	code, m := in.do("GET", "/api/v1/cases/"+c["id"].(string)+"/timeline", token, nil, nil)
	if code != 200 {
		t.Fatalf("%s: timeline %d", what, code)
	}
	entries := m["data"].([]any)
	if len(entries) == 0 {
		t.Errorf("%s: case %s has an empty timeline", what, c["id"])
	}
	var last time.Time
	seen := map[string]bool{}
	for _, x := range entries {
		e := x.(map[string]any)
		at, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(e["at"]))
		if at.Before(last) {
			t.Errorf("%s: timeline not oldest first", what)
		}
		last = at
		if e["actor"] == "" || e["summary"] == "" || e["type"] == "" {
			t.Errorf("%s: incomplete entry %v", what, e)
		}
		if e["actor"] == "stripe" {
			id, _ := e["event_id"].(string)
			if !strings.HasPrefix(id, "evt_") {
				t.Errorf("%s: stripe entry without event id: %v", what, e)
			}
			key := id + "/" + fmt.Sprint(e["type"])
			if seen[key] {
				t.Errorf("%s: event %s recorded twice", what, key)
			}
			seen[key] = true
		}
	}
}
