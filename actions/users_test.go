package actions_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// Four eyes compares people: a second token of the requester (however it
// was minted, whatever the person is now called) cannot approve; another
// person can, even one with the same display name.
func TestFourEyesComparesUsersNotTokens(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		fs, p := withFakeStripe(t)
		h := newHarness(t, d, p)
		c := h.seed("c1", "refund_request", 90000)
		users := auth.NewUserStore(d, h.clock, nil)
		tokens := auth.NewTokenStore(d, h.clock)
		ada, err := users.Create(ctx, auth.NewUser{Email: "ada@example.com", DisplayName: "Ada", Role: auth.RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		otherAda, err := users.Create(ctx, auth.NewUser{Email: "ada.other@example.com", DisplayName: "Ada", Role: auth.RoleSupervisor})
		if err != nil {
			t.Fatal(err)
		}
		for name, uid := range map[string]int64{"ada-laptop": ada.ID, "ada-second": ada.ID, "other-ada": otherAda.ID} {
			secret, _, err := tokens.Issue(ctx, uid, name, "")
			if err != nil {
				t.Fatal(err)
			}
			h.tokens[name] = secret
		}

		r := h.act(c.ID, "ada-laptop", "big-1", "refund", map[string]any{"amount": 60000}, "enterprise credit")
		if r.status != 202 || r.body["status"] != "pending_approval" || r.body["requested_by_user_id"] != float64(ada.ID) {
			t.Fatalf("request: %d %v", r.status, r.body)
		}
		id := r.body["id"].(string)
		// The same person with a second token: refused.
		if r := h.call("POST", "/api/v1/actions/"+id+"/approve", "ada-second", "", map[string]any{"reason": "fine by me"}); r.status != 403 || r.code() != "four_eyes" {
			t.Fatalf("second token of the requester approving: %d %v", r.status, r.body)
		}
		// Renamed since: still the same person.
		renamed := "Ada Lovelace"
		if _, err := users.Update(ctx, ada.ID, auth.UserPatch{DisplayName: &renamed}); err != nil {
			t.Fatal(err)
		}
		if r := h.call("POST", "/api/v1/actions/"+id+"/reject", "ada-second", "", map[string]any{"reason": "changed my mind"}); r.status != 403 || r.code() != "four_eyes" {
			t.Fatalf("renamed requester rejecting: %d %v", r.status, r.body)
		}
		if fs.count("POST") != 0 {
			t.Fatal("provider called before another person approved")
		}
		// Another person called Ada: allowed.
		r = h.call("POST", "/api/v1/actions/"+id+"/approve", "other-ada", "", map[string]any{"reason": "checked the contract"})
		if r.status != 200 || r.body["status"] != "succeeded" || r.body["decided_by_user_id"] != float64(otherAda.ID) {
			t.Fatalf("another person approving: %d %v", r.status, r.body)
		}

		// Another person of the same name reusing Ada's key sees nothing of
		// Ada's action.
		r = h.act(c.ID, "other-ada", "big-1", "refund", map[string]any{"amount": 60000}, "enterprise credit")
		if r.status != 409 || r.code() != "idempotency_key_in_use" || strings.Contains(fmt.Sprint(r.body), id) {
			t.Fatalf("same key, another person of the same name: %d %v", r.status, r.body)
		}

		// The shortcut from before users (a token named after its holder)
		// gives the same person a second token: still the same person.
		legacy, _, err := tokens.Create(ctx, "sup1", auth.RoleSupervisor)
		if err != nil {
			t.Fatal(err)
		}
		h.tokens["sup1-again"] = legacy
		c2 := h.seed("c2", "refund_request", 90000)
		r = h.act(c2.ID, "sup1", "big-2", "refund", map[string]any{"amount": 60000}, "goodwill")
		if r.status != 202 {
			t.Fatalf("sup1 request: %d %v", r.status, r.body)
		}
		id2 := r.body["id"].(string)
		if r := h.call("POST", "/api/v1/actions/"+id2+"/approve", "sup1-again", "", map[string]any{"reason": "mine"}); r.status != 403 || r.code() != "four_eyes" {
			t.Fatalf("sup1's second token approving: %d %v", r.status, r.body)
		}
		if r := h.call("POST", "/api/v1/actions/"+id2+"/approve", "sup2", "", map[string]any{"reason": "ok"}); r.status != 200 || r.body["status"] != "succeeded" {
			t.Fatalf("sup2 approving: %d %v", r.status, r.body)
		}
	})
}

// GET /cases/{id}/actions of a case that does not exist is a 404, not an
// empty list.
func TestActionsOfUnknownCaseNotFound(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		_, p := withFakeStripe(t)
		h := newHarness(t, d, p)
		h.seed("c1", "refund_request", 1000)
		if r := h.call("GET", "/api/v1/cases/c1/actions", "agent", "", nil); r.status != 200 {
			t.Fatalf("known case: %d %v", r.status, r.body)
		}
		if r := h.call("GET", "/api/v1/cases/c_nope/actions", "agent", "", nil); r.status != 404 || r.code() != "not_found" {
			t.Fatalf("unknown case: %d %v", r.status, r.body)
		}
	})
}
