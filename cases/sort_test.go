package cases

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// Every sort order pages correctly across ties: cases opened in the same
// second with the same priority share their SLA due times, cases changed in
// the same second share updated_at, and only the id tells them apart. Each
// order is walked with page sizes that cut through the tied groups, through
// the API and through Service.List, and must equal the order computed here.
func TestListSortsAcrossTies(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAPI(t, d)
		ctx := context.Background()
		prios := []string{"low", "urgent", "normal", "high"}
		var opened []Case
		for g := 0; g < 5; g++ {
			for i := 0; i < 3; i++ { // three cases per second, same priority: equal due times
				opened = append(opened, a.create(auth.RoleAgent, map[string]any{"kind": "billing_inquiry", "channel": "chat",
					"title": fmt.Sprintf("tie %d.%d", g, i), "priority": prios[g%4]}))
			}
			a.f.clock.Advance(time.Minute)
		}
		// Touch two groups of cases at one instant each: ties on updated_at.
		for i, c := range opened {
			if i%2 == 0 {
				if _, err := a.f.svc.AddNote(ctx, principalOf("sam", auth.RoleSupervisor), c.ID, "touched"); err != nil {
					t.Fatal(err)
				}
			}
			if i == 7 {
				a.f.clock.Advance(time.Second)
			}
		}
		var all []Case
		for _, c := range opened {
			got, err := a.f.svc.Get(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, got)
		}
		type key func(c Case) time.Time
		asc := func(k key) func(x, y Case) bool {
			return func(x, y Case) bool {
				if !k(x).Equal(k(y)) {
					return k(x).Before(k(y))
				}
				return x.ID < y.ID
			}
		}
		rev := func(less func(x, y Case) bool) func(x, y Case) bool {
			return func(x, y Case) bool { return less(y, x) }
		}
		created := func(c Case) time.Time { return c.CreatedAt }
		updated := func(c Case) time.Time { return c.UpdatedAt }
		due := func(c Case) time.Time { return c.SLA.NextDue() }
		byPriority := func(x, y Case) bool {
			if x.Priority.Rank() != y.Priority.Rank() {
				return x.Priority.Rank() > y.Priority.Rank()
			}
			return asc(created)(x, y)
		}
		want := map[Sort]func(x, y Case) bool{
			SortCreated: asc(created), SortCreatedDesc: rev(asc(created)),
			SortUpdated: asc(updated), SortUpdatedDesc: rev(asc(updated)),
			SortSLA: asc(due), SortSLADesc: rev(asc(due)),
			SortPriority: byPriority, SortPriorityDesc: rev(byPriority),
		}
		if len(want) != len(Sorts()) {
			t.Fatalf("the test covers %d of %d sorts", len(want), len(Sorts()))
		}
		dues := map[time.Time]int{}
		upd := map[time.Time]int{}
		for _, c := range all {
			dues[c.SLA.ResolutionDue]++
			upd[c.UpdatedAt]++
		}
		if len(dues) >= len(all) || len(upd) >= len(all) {
			t.Fatalf("the seed has no ties (%d due times, %d update times for %d cases)", len(dues), len(upd), len(all))
		}
		for _, o := range Sorts() {
			cp := slices.Clone(all)
			sort.SliceStable(cp, func(i, j int) bool { return want[o](cp[i], cp[j]) })
			var wantIDs []string
			for _, c := range cp {
				wantIDs = append(wantIDs, c.ID)
			}
			for _, n := range []int{1, 2, 4, 200} {
				if got := a.walk("sort="+url.QueryEscape(string(o)), n); !slices.Equal(got, wantIDs) {
					t.Fatalf("API sort=%s limit %d:\n got %v\nwant %v", o, n, got, wantIDs)
				}
			}
			// The service directly, with a filter, pages the same way.
			var got []string
			page := httpx.PageRequest{Limit: 2}
			for {
				l, err := a.f.svc.List(ctx, Filter{Kind: KindBillingInquiry, Sort: o}, page)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range l.Data {
					got = append(got, c.ID)
				}
				if l.NextCursor == nil {
					break
				}
				page.Cursor = *l.NextCursor
			}
			if !slices.Equal(got, wantIDs) {
				t.Fatalf("List sort=%s:\n got %v\nwant %v", o, got, wantIDs)
			}
		}
		if r := a.do(auth.RoleAgent, "GET", "/cases?sort=due", nil); r.status != 400 || r.errCode(t) != "invalid_sort" {
			t.Fatalf("unknown sort: %d %s", r.status, r.body)
		}
		m := a.want(a.do(auth.RoleAgent, "GET", "/cases?sort=sla&limit=2", nil), 200).json(t)
		if r := a.do(auth.RoleAgent, "GET", "/cases?sort=-sla&cursor="+url.QueryEscape(m["next_cursor"].(string)), nil); r.status != 400 {
			t.Fatalf("a cursor of sla used for -sla: %d", r.status)
		}
	})
}
