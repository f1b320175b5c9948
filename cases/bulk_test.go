package cases

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/errs"
)

type bulkResults struct {
	data   []map[string]any
	ok     int
	failed int
}

func (a *api) bulk(role auth.Role, body map[string]any, status int) bulkResults {
	a.t.Helper()
	m := a.want(a.do(role, "POST", "/cases/bulk", body), status).json(a.t)
	var out bulkResults
	for _, r := range m["data"].([]any) {
		out.data = append(out.data, r.(map[string]any))
	}
	out.ok, out.failed = int(m["ok"].(float64)), int(m["failed"].(float64))
	return out
}

func rowCode(r map[string]any) string {
	e, _ := r["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

// POST /cases/bulk runs one service call per case: each case has its own
// result (ok, or the error the single-case endpoint would give), its own
// version check, timeline entry and audit entry; one case failing changes
// nothing for the others.
func TestHTTPBulk(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAPI(t, d)
		ctx := context.Background()
		var cs []Case
		for i := 0; i < 4; i++ {
			cs = append(cs, a.create(auth.RoleAgent, inquiryBody(fmt.Sprintf("bulk %d", i))))
		}
		// cs[1] moves on after the caller read it: its pinned version is stale.
		if _, err := a.f.svc.AddNote(ctx, principalOf("sam", auth.RoleSupervisor), cs[1].ID, "moved"); err != nil {
			t.Fatal(err)
		}
		versions := map[string]any{}
		for _, c := range cs {
			versions[c.ID] = c.Version
		}
		ids := []string{cs[0].ID, cs[1].ID, cs[2].ID}
		res := a.bulk(auth.RoleAgent, map[string]any{"op": "assign", "case_ids": ids, "assignee": "alice", "versions": versions}, 200)
		if res.ok != 2 || res.failed != 1 || len(res.data) != 3 {
			t.Fatalf("assign: %+v", res)
		}
		for i, r := range res.data {
			if r["case_id"] != ids[i] {
				t.Fatalf("result %d is for %v, want %s", i, r["case_id"], ids[i])
			}
		}
		if res.data[1]["ok"] != false || rowCode(res.data[1]) != "version_conflict" || res.data[1]["error"].(map[string]any)["status"] != float64(409) {
			t.Fatalf("stale row: %v", res.data[1])
		}
		for _, i := range []int{0, 2} {
			if res.data[i]["ok"] != true || res.data[i]["case"].(map[string]any)["assignee"] != "alice" {
				t.Fatalf("row %d: %v", i, res.data[i])
			}
		}
		if got, _ := a.f.svc.Get(ctx, cs[1].ID); got.Assignee != nil {
			t.Fatalf("the stale case was assigned: %v", *got.Assignee)
		}
		for i, want := range []int64{1, 0, 1} {
			var n int64
			d.Gorm.Table("audit_log").Where("action = 'case.assign' AND case_id = ?", ids[i]).Count(&n)
			if n != want {
				t.Fatalf("case %d: %d assign audits, want %d", i, n, want)
			}
		}

		// Transition: one case already resolved (not allowed from there),
		// one dispute case the agent may not move, the others resolve.
		a.want(a.do(auth.RoleAgent, "POST", "/cases/"+cs[3].ID+"/transitions", map[string]any{"event": "resolve"}), 200)
		a.f.mustApply(change(evID(), "charge.dispute.created", t0, dispute("dp_bulk", "needs_response")))
		dc := a.f.only(KindDispute, "dp_bulk")
		ids = []string{cs[0].ID, cs[3].ID, dc.ID, cs[2].ID, "cas_nope"}
		res = a.bulk(auth.RoleAgent, map[string]any{"op": "transition", "case_ids": ids, "event": "resolve", "reason": "answered"}, 200)
		if res.ok != 2 || res.failed != 3 {
			t.Fatalf("transition: %+v", res)
		}
		for i, want := range []string{"", "illegal_transition", "forbidden", "", "not_found"} {
			if got := rowCode(res.data[i]); got != want {
				t.Errorf("transition row %d (%s): code %q, want %q: %v", i, ids[i], got, want, res.data[i])
			}
		}
		for _, id := range []string{cs[0].ID, cs[2].ID} {
			tl := a.f.timeline(id)
			if last := tl[len(tl)-1]; deref(last.Transition) != "resolve" || last.Actor != "alice" {
				t.Fatalf("timeline of %s: %+v", id, last)
			}
		}

		// Escalate needs a reason; tag adds to the tags.
		if r := a.do(auth.RoleAgent, "POST", "/cases/bulk", map[string]any{"op": "escalate", "case_ids": []string{cs[1].ID}, "team": "finance"}); r.status != 400 || r.errCode(t) != "invalid_reason" {
			t.Fatalf("escalate without reason: %d %s", r.status, r.body)
		}
		res = a.bulk(auth.RoleAgent, map[string]any{"op": "escalate", "case_ids": []string{cs[1].ID}, "team": "finance", "reason": "double charge"}, 200)
		if res.ok != 1 || res.data[0]["case"].(map[string]any)["team"] != "finance" {
			t.Fatalf("escalate: %+v", res)
		}
		a.want(a.do(auth.RoleAgent, "PATCH", "/cases/"+cs[1].ID, map[string]any{"tags": []string{"vip"}}), 200)
		res = a.bulk(auth.RoleAgent, map[string]any{"op": "tag", "case_ids": []string{cs[1].ID, cs[0].ID}, "tags": []string{"Chargeback-Risk"}}, 200)
		if res.ok != 2 || fmt.Sprint(res.data[0]["case"].(map[string]any)["tags"]) != "[vip chargeback-risk]" {
			t.Fatalf("tag: %+v", res)
		}

		// Malformed requests fail as a whole.
		for _, tc := range []struct {
			body map[string]any
			code string
		}{
			{map[string]any{"op": "assign", "case_ids": []string{}, "assignee": "alice"}, "invalid_case_ids"},
			{map[string]any{"op": "assign", "case_ids": []string{cs[0].ID, cs[0].ID}, "assignee": "alice"}, "invalid_case_ids"},
			{map[string]any{"op": "delete", "case_ids": []string{cs[0].ID}}, "invalid_op"},
			{map[string]any{"op": "transition", "case_ids": []string{cs[0].ID}}, "invalid_event"},
			{map[string]any{"op": "assign", "case_ids": []string{cs[0].ID}, "team": "nowhere"}, "invalid_team"},
			{map[string]any{"op": "assign", "case_ids": []string{cs[0].ID}, "assignee": "  "}, "invalid_assignee"},
			{map[string]any{"op": "escalate", "case_ids": []string{cs[0].ID}, "team": "support", "reason": "x"}, "invalid_team"},
		} {
			if r := a.do(auth.RoleAgent, "POST", "/cases/bulk", tc.body); r.status != 400 || r.errCode(t) != tc.code {
				t.Errorf("%v: %d %s, want 400 %s", tc.body, r.status, r.body, tc.code)
			}
		}
		a.want(a.do("", "POST", "/cases/bulk", map[string]any{"op": "assign"}), http.StatusUnauthorized)
	})
}

// At most 100 cases per bulk request: 100 are all applied, 101 are refused
// before anything changes. A principal whose role may not write cases is
// refused as a whole.
func TestBulkLimitAndPermission(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAPI(t, d)
		var ids []string
		for i := 0; i < MaxBulkCases+1; i++ {
			ids = append(ids, a.create(auth.RoleAgent, inquiryBody(fmt.Sprintf("many %d", i))).ID)
		}
		r := a.do(auth.RoleAgent, "POST", "/cases/bulk", map[string]any{"op": "assign", "case_ids": ids, "assignee": "alice"})
		if r.status != 400 || r.errCode(t) != "too_many_cases" {
			t.Fatalf("101 cases: %d %s", r.status, r.body)
		}
		var n int64
		d.Gorm.Table("audit_log").Where("action = 'case.assign'").Count(&n)
		if n != 0 {
			t.Fatalf("a refused bulk request changed %d cases", n)
		}
		res := a.bulk(auth.RoleAgent, map[string]any{"op": "assign", "case_ids": ids[:MaxBulkCases], "assignee": "alice"}, 200)
		if res.ok != MaxBulkCases || res.failed != 0 {
			t.Fatalf("100 cases: ok %d failed %d", res.ok, res.failed)
		}
		d.Gorm.Table("audit_log").Where("action = 'case.assign'").Count(&n)
		if n != MaxBulkCases {
			t.Fatalf("%d assign audits for %d cases", n, MaxBulkCases)
		}

		// Every role today holds cases:write; a principal without it (an
		// unknown role) is refused before any case is read.
		_, err := a.f.svc.Bulk(context.Background(), auth.Principal{Name: "ghost", Role: "viewer"},
			BulkRequest{Op: BulkAssign, CaseIDs: ids[:1], Assignee: strp("ghost")})
		if !errs.Is(err, errs.EFORBIDDEN) {
			t.Fatalf("role without cases:write: %v", err)
		}
		for _, role := range auth.Roles() {
			if !auth.Allowed(role, auth.PermCasesWrite) {
				r := a.do(role, "POST", "/cases/bulk", map[string]any{"op": "assign", "case_ids": ids[:1], "assignee": "x"})
				if r.status != 403 {
					t.Fatalf("%s: %d", role, r.status)
				}
			}
		}
	})
}
