package main

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripemock"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// A request repeated at once with its Idempotency-Key (a double click, a
// client retrying a slow answer) is one action and is never a 500. Found by
// the fault suite (make faults): on PostgreSQL the repeat, holding the
// case's row lock, inserted its action row and waited on the unique key for
// the first request's provider-call transaction, which held that action's
// row and waited for the case: a deadlock, answered 500.
func TestSameKeyRequestsAtOnceNeverDeadlock(t *testing.T) {
	mock := stripemock.Start(t)
	env := map[string]string{"DATABASE_URL": dbtest.NewPostgresURL(t),
		"RECOURSE_STRIPE_API_KEY": "sk_test_123", "RECOURSE_STRIPE_API_BASE": mock.URL}
	in := boot(t, env)
	admin := in.token("admin")
	g := stripetest.New(31)
	start := time.Now().Add(-20 * 24 * time.Hour).UTC()
	var charges []string
	for range 8 {
		for _, e := range g.ActiveRenews(start, 2) {
			in.post(e)
			if e.Type == "charge.succeeded" {
				charges = append(charges, e.Object["id"].(string))
			}
		}
	}
	in.drained(admin)
	var wg sync.WaitGroup
	var mu sync.Mutex
	answers := map[int]int{}
	ids := map[string]map[any]bool{}
	for i, ch := range charges {
		code, c := in.do("POST", "/api/v1/cases", admin, jsonBody(map[string]any{"kind": "refund_request", "channel": "chat",
			"title": "Refund", "links": map[string]any{"charge": ch}}), nil)
		if code != 201 {
			t.Fatalf("open case: %d %v", code, c)
		}
		key := fmt.Sprintf("same-%d", i)
		mu.Lock()
		ids[key] = map[any]bool{}
		mu.Unlock()
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, a := in.do("POST", "/api/v1/cases/"+c["id"].(string)+"/actions", admin,
					jsonBody(map[string]any{"type": "refund", "params": map[string]any{"amount": 100}, "reason": "asked"}),
					map[string]string{"Idempotency-Key": key})
				mu.Lock()
				defer mu.Unlock()
				answers[code]++
				switch {
				case code == 201 || code == 202: // done, or a repeat while the first is still at Stripe
					ids[key][a["id"]] = true
				case code == 409 && a["error"].(map[string]any)["code"] == "idempotency_key_in_flight":
				default:
					t.Errorf("%s: %d %v", key, code, a)
				}
			}()
		}
	}
	wg.Wait()
	for key, set := range ids {
		if len(set) > 1 {
			t.Errorf("%s: %d actions answered, want one: %v", key, len(set), set)
		}
	}
	t.Logf("answers: %v", answers)
}
