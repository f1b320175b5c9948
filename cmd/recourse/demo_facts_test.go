package main

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// The demo gives every customer with a dispute a full set of facts, every
// one accepted, and the policy documents their consents cite; the same
// events give the same facts.
func TestDemoFacts(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	events := demoEvents(2026, 120, now)
	custs := disputedCustomers(events)
	if len(custs) < 3 {
		t.Fatalf("%d disputed customers in the demo", len(custs))
	}
	if !reflect.DeepEqual(demoFacts(custs[0]), demoFacts(disputedCustomers(demoEvents(2026, 120, now))[0])) {
		t.Fatal("demo facts differ between runs")
	}
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		store := disputes.NewFactStore(d, clock.NewManual(now))
		ctx := context.Background()
		nc, nf, err := seedDemoFacts(ctx, store, events)
		if err != nil || nc != len(custs) || nf < nc*10 {
			t.Fatalf("seed: %d customers, %d facts, %v", nc, nf, err)
		}
		for _, c := range custs {
			fs, err := store.Facts(ctx, c.id, disputes.FactQuery{})
			if err != nil {
				t.Fatal(err)
			}
			kinds := map[disputes.FactKind]int{}
			for _, f := range fs {
				kinds[f.Kind]++
				if f.Policy != nil {
					if _, err := store.PolicyDocument(ctx, f.Policy.Key, f.Policy.Version); err != nil {
						t.Fatalf("%s cites %v: %v", c.id, f.Policy, err)
					}
				}
			}
			for _, k := range []disputes.FactKind{disputes.FactSignup, disputes.FactLogin, disputes.FactUsage, disputes.FactConsent, disputes.FactNotice, disputes.FactDelivery} {
				if kinds[k] == 0 {
					t.Errorf("%s has no %s facts: %v", c.id, k, kinds)
				}
			}
			if kinds[disputes.FactConsent] != 2 {
				t.Errorf("%s: %d consents", c.id, kinds[disputes.FactConsent])
			}
		}
		// Seeding again changes nothing.
		if _, nf, err := seedDemoFacts(ctx, store, events); err != nil || nf != 0 {
			t.Fatalf("second seed: %d new facts, %v", nf, err)
		}
	})
}
