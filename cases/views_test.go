package cases

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// Saved views over the API: a person saves, lists and deletes their own
// views; filters are validated exactly like GET /cases's parameters;
// another person's unshared view is neither listed nor deletable (404), a
// shared one is listed for everyone but deletable only by its owner.
func TestHTTPSavedViews(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		a := newAPI(t, d)
		r := a.want(a.do(auth.RoleAgent, "POST", "/views", map[string]any{"name": "Breached disputes",
			"filters": map[string]string{"kind": "dispute", "sla": "breached", "sort": "sla", "team": ""}}), http.StatusCreated).json(t)
		id := int64(r["id"].(float64))
		if r["query"] != "kind=dispute&sla=breached&sort=sla" || r["owner"] != "alice" || r["shared"] != false {
			t.Fatalf("saved view: %v", r)
		}
		// The query is one GET /cases accepts as it is.
		a.want(a.do(auth.RoleAgent, "GET", "/cases?"+r["query"].(string), nil), http.StatusOK)

		// Invalid filters: 400 with the list's own code.
		for _, tc := range []struct {
			filters map[string]string
			code    string
		}{
			{map[string]string{"kind": "parcel"}, "invalid_kind"},
			{map[string]string{"sort": "due"}, "invalid_sort"},
			{map[string]string{"sla": "late"}, "invalid_sla"},
			{map[string]string{"kind": "billing_inquiry", "state": "won"}, "invalid_state"},
			{map[string]string{"priority": "asap"}, "invalid_priority"},
			{map[string]string{"colour": "red"}, "invalid_parameter"},
			{map[string]string{"cursor": "abc"}, "invalid_parameter"},
		} {
			res := a.do(auth.RoleAgent, "POST", "/views", map[string]any{"name": "bad", "filters": tc.filters})
			if res.status != http.StatusBadRequest || res.errCode(t) != tc.code {
				t.Errorf("filters %v: %d %s, want 400 %s", tc.filters, res.status, res.body, tc.code)
			}
		}
		if res := a.do(auth.RoleAgent, "POST", "/views", map[string]any{"name": "  ", "filters": map[string]string{}}); res.status != 400 || res.errCode(t) != "invalid_name" {
			t.Fatalf("blank name: %d %s", res.status, res.body)
		}
		if res := a.do(auth.RoleAgent, "POST", "/views", map[string]any{"name": "Breached disputes"}); res.status != 409 || res.errCode(t) != "view_exists" {
			t.Fatalf("duplicate name: %d %s", res.status, res.body)
		}
		shared := a.want(a.do(auth.RoleAgent, "POST", "/views", map[string]any{"name": "Urgent", "shared": true,
			"filters": map[string]string{"priority": "urgent", "status": "open"}}), http.StatusCreated).json(t)
		sharedID := int64(shared["id"].(float64))

		list := func(role auth.Role) []map[string]any {
			m := a.want(a.do(role, "GET", "/views", nil), 200).json(t)
			var out []map[string]any
			for _, v := range m["data"].([]any) {
				out = append(out, v.(map[string]any))
			}
			return out
		}
		if got := list(auth.RoleAgent); len(got) != 2 || got[0]["name"] != "Breached disputes" || got[1]["name"] != "Urgent" {
			t.Fatalf("alice's views: %v", got)
		}
		// Another person sees only the shared view and can delete neither.
		if got := list(auth.RoleSupervisor); len(got) != 1 || got[0]["name"] != "Urgent" {
			t.Fatalf("sam's views: %v", got)
		}
		for _, vid := range []int64{id, sharedID} {
			if res := a.do(auth.RoleSupervisor, "DELETE", fmt.Sprintf("/views/%d", vid), nil); res.status != http.StatusNotFound {
				t.Fatalf("sam deletes alice's view %d: %d %s", vid, res.status, res.body)
			}
		}
		// A principal that is not a person (no user) keeps no views.
		if _, err := a.f.svc.Views(t.Context(), principalOf("cli:ops", auth.RoleAdmin)); err == nil {
			t.Fatal("a non-person lists views")
		}
		a.want(a.do(auth.RoleAgent, "DELETE", fmt.Sprintf("/views/%d", id), nil), http.StatusNoContent)
		a.want(a.do(auth.RoleAgent, "DELETE", fmt.Sprintf("/views/%d", id), nil), http.StatusNotFound)
		a.want(a.do(auth.RoleAgent, "DELETE", "/views/x", nil), http.StatusNotFound)
		if got := list(auth.RoleAgent); len(got) != 1 {
			t.Fatalf("after delete: %v", got)
		}
		var n int64
		d.Gorm.Table("audit_log").Where("action IN ('view.create', 'view.delete') AND object_id = ?", fmt.Sprint(id)).Count(&n)
		if n != 2 {
			t.Fatalf("audit entries for view %d: %d", id, n)
		}
		a.want(a.do("", "GET", "/views", nil), http.StatusUnauthorized)

		// At most MaxViewsPerUser views per person: the 50th is kept, the 51st refused.
		for i := len(list(auth.RoleAgent)); i < MaxViewsPerUser; i++ {
			a.want(a.do(auth.RoleAgent, "POST", "/views", map[string]any{"name": fmt.Sprintf("v%02d", i)}), http.StatusCreated)
		}
		if res := a.do(auth.RoleAgent, "POST", "/views", map[string]any{"name": "one too many"}); res.status != 400 || res.errCode(t) != "too_many_views" {
			t.Fatalf("view %d: %d %s", MaxViewsPerUser+1, res.status, res.body)
		}
	})
}
