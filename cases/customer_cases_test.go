package cases

import (
	"context"
	"maps"
	"testing"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

func TestOpenCaseCounts(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		p := principalOf("alice", auth.RoleAgent)
		open := func(customer string, kind Kind) Case {
			t.Helper()
			c, err := f.svc.OpenManual(ctx, p, ManualCase{Kind: kind, Channel: ChannelEmail, Title: "for " + customer,
				Links: Links{Customer: strp(customer)}})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		open("cus_a", KindRefundRequest)
		open("cus_a", KindBillingInquiry)
		closed := open("cus_a", KindBillingInquiry)
		open("cus_b", KindRefundRequest)
		declined := open("cus_c", KindRefundRequest)
		for c, ev := range map[string]string{closed.ID: "resolve", declined.ID: "decline"} {
			got, err := f.svc.Transition(ctx, p, c, TransitionRequest{Event: ev})
			if err != nil || got.IsOpen() {
				t.Fatalf("close %s with %s: %v", c, ev, err)
			}
		}

		got, err := f.svc.OpenCaseCounts(ctx, []string{"cus_a", "cus_b", "cus_c", "cus_none"})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int{"cus_a": 2, "cus_b": 1}; !maps.Equal(got, want) {
			t.Fatalf("counts %v, want %v (closed cases and other customers not counted)", got, want)
		}
		if got, err := f.svc.OpenCaseCounts(ctx, nil); err != nil || len(got) != 0 {
			t.Fatalf("no ids: %v %v", got, err)
		}
		// At the bound and one past it.
		ids := make([]string, maxCountIDs+1)
		for i := range ids {
			ids[i] = "cus_x"
		}
		if _, err := f.svc.OpenCaseCounts(ctx, ids[:maxCountIDs]); err != nil {
			t.Fatalf("%d ids: %v", maxCountIDs, err)
		}
		if _, err := f.svc.OpenCaseCounts(ctx, ids); err == nil {
			t.Fatalf("%d ids accepted", len(ids))
		}
	})
}
