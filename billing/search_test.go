package billing

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// searchSeed writes customers and charges straight into the mirror's
// tables (the search reads them; how events fill them is tested apart).
type searchSeed struct {
	t *testing.T
	f *fixture
	n int
}

func (s *searchSeed) customer(id, email, name string) {
	s.t.Helper()
	s.n++
	at := t0.Add(time.Duration(s.n) * time.Minute)
	r := customerRow{Customer: Customer{ID: id, Email: email, Name: name, Created: at,
		Version: Version{EventID: "evt_seed_" + id, EventCreated: at}}, CreatedAt: at, UpdatedAt: at}
	if err := s.f.d.Gorm.Create(&r).Error; err != nil {
		s.t.Fatal(err)
	}
}

func (s *searchSeed) charge(id, customer, brand, last4 string) {
	s.t.Helper()
	s.n++
	at := t0.Add(time.Duration(s.n) * time.Minute)
	r := chargeRow{Charge: Charge{ID: id, CustomerID: customer, Amount: 1000, Currency: "usd", Status: "succeeded",
		CardBrand: brand, CardLast4: last4, Created: at, Version: Version{EventID: "evt_seed_" + id, EventCreated: at}},
		CreatedAt: at, UpdatedAt: at}
	if err := s.f.d.Gorm.Create(&r).Error; err != nil {
		s.t.Fatal(err)
	}
}

// fakeCounter counts open cases from a map.
type fakeCounter map[string]int

func (c fakeCounter) OpenCaseCounts(_ context.Context, ids []string) (map[string]int, error) {
	out := map[string]int{}
	for _, id := range ids {
		if n, ok := c[id]; ok {
			out[id] = n
		}
	}
	return out, nil
}

func ids(hits []CustomerHit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.ID
	}
	return out
}

func seedSearch(t *testing.T, f *fixture) {
	s := &searchSeed{t: t, f: f}
	s.customer("cus_ada", "Ada@Example.com", "Ada Lovelace")
	s.customer("cus_ada2", "ada@example.com.au", "Ada Byron")
	s.customer("cus_adam", "adam@example.com", "Adam Smith")
	s.customer("cus_bob", "bob@example.org", "Bob Ada")
	s.customer("cus_zoe", "zoe@example.com", "Zoë Ång")
	s.customer("cus_pct", "p%_x@example.com", "100% Real")
	s.charge("ch_ada_1", "cus_ada", "visa", "4242")
	s.charge("ch_ada_2", "cus_ada", "visa", "4242") // twice on one card: one hit
	s.charge("ch_bob_1", "cus_bob", "mastercard", "4242")
	s.charge("ch_adam_1", "cus_adam", "American Express", "0005")
	s.charge("py_zoe_1", "cus_zoe", "visa", "1881")
	s.charge("ch_orphan", "", "visa", "1881") // no customer: not a hit
}

func TestSearchCustomers(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		seedSearch(t, f)
		store := f.store.CountingOpenCases(fakeCounter{"cus_ada": 2, "cus_bob": 1})
		ctx := context.Background()
		search := func(q string) SearchResult {
			t.Helper()
			res, err := store.SearchCustomers(ctx, CustomerSearch{Query: q})
			if err != nil {
				t.Fatalf("search %q: %v", q, err)
			}
			return res
		}

		for _, tc := range []struct {
			q     string
			match SearchMatch
			want  []string
		}{
			// Email: case-insensitive, exact first, then longer emails with
			// that start, in byte order.
			{"ada@example.com", MatchEmail, []string{"cus_ada", "cus_ada2"}},
			{"  ADA@EXAMPLE.COM  ", MatchEmail, []string{"cus_ada", "cus_ada2"}},
			{"ada@example.com.au", MatchEmail, []string{"cus_ada2"}},
			{"bob@", MatchEmail, []string{"cus_bob"}},
			{"nobody@example.com", MatchEmail, []string{}},
			// LIKE's wildcards are plain characters here.
			{"p%_x@", MatchEmail, []string{"cus_pct"}},
			{"%@", MatchEmail, []string{}},
			// Name: prefix of the whole name, case-insensitive, by name.
			{"ada", MatchName, []string{"cus_ada2", "cus_ada", "cus_adam"}},
			{"Ada L", MatchName, []string{"cus_ada"}},
			{"100%", MatchName, []string{"cus_pct"}},
			{"zoë", MatchName, []string{"cus_zoe"}},
			// No name starts with it: the start of an email.
			{"zoe", MatchEmail, []string{"cus_zoe"}},
			{"lovelace", MatchEmail, []string{}}, // tried as a name, then as an email
			// Provider ids: the object's customer.
			{"cus_bob", MatchID, []string{"cus_bob"}},
			{"ch_ada_2", MatchID, []string{"cus_ada"}},
			{"py_zoe_1", MatchID, []string{"cus_zoe"}},
			{"ch_orphan", MatchID, []string{}},
			{"ch_unknown", MatchID, []string{}},
			{"cus_unknown", MatchID, []string{}},
			// Cards: last four, with or without the brand, either order.
			{"4242", MatchCard, []string{"cus_ada", "cus_bob"}},
			{"visa 4242", MatchCard, []string{"cus_ada"}},
			{"4242 VISA", MatchCard, []string{"cus_ada"}},
			{"mastercard 4242", MatchCard, []string{"cus_bob"}},
			{"amex 0005", MatchCard, []string{"cus_adam"}},
			{"visa 0005", MatchCard, []string{}},
			{"1881", MatchCard, []string{"cus_zoe"}},
			{"9999", MatchCard, []string{}},
		} {
			res := search(tc.q)
			if res.Match != tc.match || !slices.Equal(ids(res.Data), tc.want) {
				t.Errorf("%q: %s %v, want %s %v", tc.q, res.Match, ids(res.Data), tc.match, tc.want)
			}
			if res.NextCursor != nil {
				t.Errorf("%q: a next page of a short result", tc.q)
			}
		}

		// Hits carry the profile and the open-case count.
		res := search("visa 4242")
		if h := res.Data[0]; h.Email != "Ada@Example.com" || h.Name != "Ada Lovelace" || !h.Mirrored || h.OpenCases != 2 ||
			!h.Created.Equal(t0.Add(time.Minute)) || h.Created.Location() != time.UTC {
			t.Fatalf("hit %+v", h)
		}
		if res := search("mastercard 4242"); res.Data[0].OpenCases != 1 {
			t.Fatalf("open cases of cus_bob: %+v", res.Data[0])
		}
		if res, _ := f.store.SearchCustomers(ctx, CustomerSearch{Query: "visa 4242"}); res.Data[0].OpenCases != 0 {
			t.Fatal("a store without a counter counted cases")
		}

		// A customer only its objects name (its own events not here yet).
		(&searchSeed{t: t, f: f, n: 100}).charge("ch_ghost", "cus_ghost", "visa", "7777")
		f.apply(f.gen.NewEvent("customer.subscription.created", f.gen.Subscription(stripetest.SubscriptionParams{ID: "sub_ghost", Customer: "cus_ghost"})))
		if res := search("sub_ghost"); len(res.Data) != 1 || res.Data[0].ID != "cus_ghost" || res.Data[0].Mirrored {
			t.Fatalf("subscription of an unmirrored customer: %+v", res.Data)
		}
	})
}

func TestSearchCustomersPaging(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		s := &searchSeed{t: t, f: f}
		// 105 customers named "Pat …" with the same card, created out of
		// name order; three pairs share a name (the id breaks the tie).
		var want []string
		for i := 104; i >= 0; i-- {
			n := i
			if i%35 == 1 {
				n = i - 1
			}
			id := fmt.Sprintf("cus_p%03d", i)
			s.customer(id, fmt.Sprintf("pat%03d@example.com", i), fmt.Sprintf("Pat %03d", n))
			s.charge("ch_p"+id, id, "visa", "4000")
		}
		for i := 0; i <= 104; i++ {
			want = append(want, fmt.Sprintf("cus_p%03d", i))
		}
		ctx := context.Background()
		// "pat0" matches no name ("Pat 000"): it pages through emails.
		for _, q := range []string{"pat", "PAT ", "pat0", "visa 4000"} {
			for _, limit := range []int{1, 7, 100} {
				var got []string
				cursor := ""
				for pages := 0; ; pages++ {
					res, err := f.store.SearchCustomers(ctx, CustomerSearch{Query: q, Limit: limit, Cursor: cursor})
					if err != nil {
						t.Fatalf("%q limit %d: %v", q, limit, err)
					}
					if len(res.Data) > limit || pages > 200 {
						t.Fatalf("%q: page of %d at limit %d", q, len(res.Data), limit)
					}
					got = append(got, ids(res.Data)...)
					if res.NextCursor == nil {
						break
					}
					cursor = *res.NextCursor
				}
				w := want
				if q == "pat0" {
					w = want[:100]
				}
				if !slices.Equal(got, w) {
					t.Fatalf("%q limit %d: %d hits\n%v\nwant\n%v", q, limit, len(got), got, w)
				}
			}
		}
		// The default page.
		res, err := f.store.SearchCustomers(ctx, CustomerSearch{Query: "pat"})
		if err != nil || len(res.Data) != DefaultSearchLimit || res.NextCursor == nil {
			t.Fatalf("default page: %d %v", len(res.Data), err)
		}
		// A cursor of another search is refused.
		if _, err := f.store.SearchCustomers(ctx, CustomerSearch{Query: "visa 4000", Cursor: *res.NextCursor}); errs.KindOf(err) != errs.EINVALID {
			t.Fatalf("name cursor on a card search: %v", err)
		}
	})
}

func TestSearchCustomersLimits(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		for _, tc := range []struct {
			in   CustomerSearch
			code string
		}{
			{CustomerSearch{Query: ""}, "query_required"},
			{CustomerSearch{Query: " \t "}, "query_required"},
			{CustomerSearch{Query: strings.Repeat("a", MaxSearchQueryLen+1)}, "query_too_long"},
			{CustomerSearch{Query: "ada", Limit: MaxSearchLimit + 1}, "invalid_limit"},
			{CustomerSearch{Query: "ada", Limit: -1}, "invalid_limit"},
			{CustomerSearch{Query: "ada", Cursor: "not-a-cursor"}, "invalid_cursor"},
		} {
			_, err := f.store.SearchCustomers(ctx, tc.in)
			if e, ok := errs.As(err); !ok || e.Kind != errs.EINVALID || e.Code != tc.code {
				t.Errorf("%+v: %v, want %s", tc.in, err, tc.code)
			}
		}
		for _, in := range []CustomerSearch{
			{Query: strings.Repeat("a", MaxSearchQueryLen)},
			{Query: "ada", Limit: MaxSearchLimit},
			{Query: "ada", Limit: 1},
		} {
			if _, err := f.store.SearchCustomers(ctx, in); err != nil {
				t.Errorf("%d-byte query, limit %d: %v", len(in.Query), in.Limit, err)
			}
		}
	})
}

// TestSearchCustomersHTTP drives GET /api/v1/customers with a real token.
func TestSearchCustomersHTTP(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		// A real charge event: the card's brand and last four come from
		// payment_method_details.card.
		evs := f.gen.Chargeback(t0, stripetest.ChargebackOptions{Brand: "visa", Reason: "fraudulent"})
		f.applyAll(evs)
		cust := evs[0].Object["id"].(string)
		email := evs[0].Object["email"].(string)
		ch := firstOf(t, evs, "charge.succeeded").Object
		last4 := ch["payment_method_details"].(map[string]any)["card"].(map[string]any)["last4"].(string)
		a := newAPI(t, f)

		for _, q := range []string{email, strings.ToUpper(email), "visa " + last4, last4 + " visa", ch["id"].(string)} {
			status, body := a.get("/api/v1/customers?q="+url.QueryEscape(q), a.token)
			data, _ := body["data"].([]any)
			if status != 200 || len(data) != 1 || data[0].(map[string]any)["id"] != cust || body["next_cursor"] != nil {
				t.Fatalf("q=%s: %d %v", q, status, body)
			}
			hit := data[0].(map[string]any)
			if hit["email"] != email || hit["open_cases"] != float64(0) || hit["created"] == "" {
				t.Fatalf("hit %v", hit)
			}
		}
		status, body := a.get("/api/v1/customers?q="+url.QueryEscape(email), a.token)
		if status != 200 || body["match"] != "email" {
			t.Fatalf("match: %v", body)
		}

		for _, tc := range []struct {
			query string
			code  string
		}{
			{"", "query_required"},
			{"q=", "query_required"},
			{"q=%20%20", "query_required"},
			{"q=" + strings.Repeat("x", MaxSearchQueryLen+1), "query_too_long"},
			{"q=ada&limit=101", "invalid_limit"},
			{"q=ada&limit=0", "invalid_limit"},
			{"q=ada&limit=ten", "invalid_limit"},
			{"q=ada&cursor=%25%25", "invalid_cursor"},
		} {
			status, body := a.get("/api/v1/customers?"+tc.query, a.token)
			e, _ := body["error"].(map[string]any)
			if status != 400 || e["code"] != tc.code {
				t.Errorf("?%s: %d %v, want 400 %s", tc.query, status, body, tc.code)
			}
		}
		if status, _ := a.get("/api/v1/customers?q=ada&limit=100", a.token); status != 200 {
			t.Fatalf("limit=100: %d", status)
		}
		if status, _ := a.get("/api/v1/customers?q="+strings.Repeat("x", MaxSearchQueryLen), a.token); status != 200 {
			t.Fatalf("a %d-character q: %d", MaxSearchQueryLen, status)
		}
		if status, _ := a.get("/api/v1/customers?q=ada", ""); status != 401 {
			t.Fatalf("without a token: %d", status)
		}
	})
}
