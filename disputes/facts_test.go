package disputes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/pan"
)

var factsNow = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func newFactStore(t testing.TB, d *db.DB) *disputes.FactStore {
	t.Helper()
	return disputes.NewFactStore(d, clock.NewManual(factsNow))
}

// raw marshals facts given as maps, so tests can send any shape.
func raw(t testing.TB, facts ...map[string]any) []json.RawMessage {
	t.Helper()
	out := make([]json.RawMessage, len(facts))
	for i, f := range facts {
		b, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

func login(id string, at time.Time) map[string]any {
	return map[string]any{"id": id, "kind": "login", "occurred_at": at.Format(time.RFC3339Nano), "ip": "203.0.113.7", "device_id": "dev_9"}
}

func put(t testing.TB, s *disputes.FactStore, customer string, facts []json.RawMessage) disputes.PutResult {
	t.Helper()
	res, err := s.Put(context.Background(), customer, facts)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return res
}

func ids(fs []disputes.Fact) string {
	var out []string
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return strings.Join(out, ",")
}

func TestFactsPutIdempotent(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		s := newFactStore(t, d)
		at := factsNow.Add(-time.Hour)
		batch := raw(t, login("f1", at), login("f2", at.Add(time.Minute)))
		if res := put(t, s, "cus_A", batch); res.Accepted != 2 || res.Duplicates != 0 || len(res.Rejected) != 0 {
			t.Fatalf("first put: %+v", res)
		}
		// A resend (even with changed content) changes nothing.
		changed := login("f1", at.Add(-48*time.Hour))
		changed["ip"] = "198.51.100.1"
		res := put(t, s, "cus_A", append(batch, raw(t, changed, login("f3", at))...))
		if res.Accepted != 1 || res.Duplicates != 3 || len(res.Rejected) != 0 {
			t.Fatalf("resend: %+v", res)
		}
		// The same id twice within one batch: one kept, one duplicate.
		res = put(t, s, "cus_A", raw(t, login("f4", at), login("f4", at)))
		if res.Accepted != 1 || res.Duplicates != 1 {
			t.Fatalf("in-batch duplicate: %+v", res)
		}
		fs, err := s.Facts(context.Background(), "cus_A", disputes.FactQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(fs); got != "f1,f3,f4,f2" {
			t.Fatalf("facts %s", got)
		}
		if fs[0].IP != "203.0.113.7" || !fs[0].OccurredAt.Equal(at) || fs[0].CustomerID != "cus_A" || fs[0].Kind != disputes.FactLogin {
			t.Fatalf("resend changed f1: %+v", fs[0])
		}
		if !fs[0].ReceivedAt.Equal(factsNow) || fs[0].DeviceID != "dev_9" {
			t.Fatalf("f1 read back as %+v", fs[0])
		}
	})
}

func TestFactsPutPartialRejection(t *testing.T) {
	t.Parallel()
	at := factsNow.Add(-time.Hour).Format(time.RFC3339)
	cases := []struct {
		fact map[string]any
		code string
	}{
		{map[string]any{"kind": "login", "occurred_at": at}, "fact_id_required"},
		{map[string]any{"id": strings.Repeat("x", 256), "kind": "login", "occurred_at": at}, "fact_id_too_long"},
		{map[string]any{"id": "k", "occurred_at": at}, "fact_kind_required"},
		{map[string]any{"id": "k", "kind": "purchase", "occurred_at": at}, "fact_kind_unknown"},
		{map[string]any{"id": "t", "kind": "login"}, "fact_occurred_at_required"},
		{map[string]any{"id": "t", "kind": "login", "occurred_at": "2026-03-02 10:00"}, "fact_occurred_at_invalid"},
		{map[string]any{"id": "t", "kind": "login", "occurred_at": factsNow.Add(25 * time.Hour).Format(time.RFC3339)}, "fact_occurred_at_in_future"},
		{map[string]any{"id": "t", "kind": "login", "occurred_at": "1970-01-01T00:00:00Z"}, "fact_occurred_at_out_of_range"},
		{map[string]any{"id": "i", "kind": "login", "occurred_at": at, "ip": "300.1.1.1"}, "fact_ip_invalid"},
		{map[string]any{"id": "c", "kind": "consent", "occurred_at": at}, "fact_policy_required"},
		{map[string]any{"id": "c", "kind": "consent", "occurred_at": at, "policy": map[string]any{"key": "terms"}}, "fact_policy_required"},
		{map[string]any{"id": "p", "kind": "login", "occurred_at": at, "policy": map[string]any{"key": "terms", "version": "3"}}, "fact_field_not_for_kind"},
		{map[string]any{"id": "p", "kind": "signup", "occurred_at": at, "template": "welcome"}, "fact_field_not_for_kind"},
		{map[string]any{"id": "d", "kind": "usage", "occurred_at": at, "data": []int{1}}, "fact_data_not_object"},
		{map[string]any{"id": "d", "kind": "usage", "occurred_at": at, "data": map[string]any{"x": strings.Repeat("a", disputes.MaxFactDataBytes)}}, "fact_data_too_large"},
		{map[string]any{"id": "u", "kind": "usage", "occurred_at": at, "colour": "red"}, "fact_malformed"},
		{map[string]any{"id": 7, "kind": "usage", "occurred_at": at}, "fact_malformed"},
		{map[string]any{"id": "m", "customer": "cus_B", "kind": "usage", "occurred_at": at}, "fact_customer_mismatch"},
	}
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		s := newFactStore(t, d)
		var batch []map[string]any
		for i, c := range cases {
			batch = append(batch, login(fmt.Sprintf("good_%d", i), factsNow.Add(-time.Duration(i)*time.Minute)), c.fact)
		}
		res := put(t, s, "cus_A", raw(t, batch...))
		if res.Accepted != len(cases) || res.Duplicates != 0 || len(res.Rejected) != len(cases) {
			t.Fatalf("result %+v", res)
		}
		for i, c := range cases {
			r := res.Rejected[i]
			if r.Index != 2*i+1 || r.Error.Code != c.code || r.Error.Message == "" {
				t.Errorf("case %d (%v): rejection %+v, want index %d code %s", i, c.fact, r, 2*i+1, c.code)
			}
		}
		fs, err := s.Facts(context.Background(), "cus_A", disputes.FactQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) != len(cases) {
			t.Fatalf("%d facts kept, want %d", len(fs), len(cases))
		}
	})
}

func TestFactsPutBatchLimitAndCustomer(t *testing.T) {
	t.Parallel()
	s := newFactStore(t, dbtest.Open(t, db.SQLite))
	many := make([]map[string]any, disputes.MaxFactsPerBatch+1)
	for i := range many {
		many[i] = login(fmt.Sprint("f", i), factsNow.Add(-time.Hour))
	}
	_, err := s.Put(context.Background(), "cus_A", raw(t, many...))
	if e, ok := errs.As(err); !ok || e.Kind != errs.EUNPROCESSABLE || e.Code != "too_many_facts" || !strings.Contains(e.Message, "1000") {
		t.Fatalf("1,001 facts: %v", err)
	}
	for _, c := range []string{"", "  ", strings.Repeat("c", 256), "cus\n1"} {
		if _, err := s.Put(context.Background(), c, raw(t, login("f", factsNow))); !errs.Is(err, errs.EINVALID) {
			t.Errorf("customer %q: %v", c, err)
		}
	}
}

func TestFactsQueryOrderFiltersIsolation(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		s := newFactStore(t, d)
		ctx := context.Background()
		base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		at := func(h int) string { return base.Add(time.Duration(h) * time.Hour).Format(time.RFC3339) }
		put(t, s, "cus_A", raw(t,
			map[string]any{"id": "b", "kind": "login", "occurred_at": at(2)},
			map[string]any{"id": "a", "kind": "usage", "occurred_at": at(2)}, // same time: id orders
			map[string]any{"id": "z", "kind": "signup", "occurred_at": at(0)},
			map[string]any{"id": "n", "kind": "notice", "occurred_at": at(5), "channel": "email", "template": "renewal_reminder"},
			map[string]any{"id": "c", "kind": "consent", "occurred_at": at(1), "policy": map[string]any{"key": "terms", "version": "3"}},
			// An odd offset is kept as the same instant in UTC.
			map[string]any{"id": "o", "kind": "login", "occurred_at": base.Add(3*time.Hour + 500*time.Millisecond).In(time.FixedZone("x", 5*3600)).Format(time.RFC3339Nano)},
		))
		put(t, s, "cus_B", raw(t,
			map[string]any{"id": "a", "kind": "usage", "occurred_at": at(2)}, // same id, other customer: its own fact
			map[string]any{"id": "bb", "kind": "login", "occurred_at": at(3)},
		))
		tm := func(h int) *time.Time { v := base.Add(time.Duration(h) * time.Hour); return &v }
		for _, c := range []struct {
			customer string
			q        disputes.FactQuery
			want     string
		}{
			{"cus_A", disputes.FactQuery{}, "z,c,a,b,o,n"},
			{"cus_B", disputes.FactQuery{}, "a,bb"},
			{"cus_C", disputes.FactQuery{}, ""},
			{"cus_A", disputes.FactQuery{Kinds: []disputes.FactKind{disputes.FactLogin}}, "b,o"},
			{"cus_A", disputes.FactQuery{Kinds: []disputes.FactKind{disputes.FactLogin, disputes.FactSignup}}, "z,b,o"},
			{"cus_A", disputes.FactQuery{From: tm(2)}, "a,b,o,n"},          // from inclusive
			{"cus_A", disputes.FactQuery{To: tm(2)}, "z,c"},                // to exclusive
			{"cus_A", disputes.FactQuery{From: tm(1), To: tm(3)}, "c,a,b"}, // o is 3h + 0.5s
			{"cus_A", disputes.FactQuery{From: tm(1), To: tm(4)}, "c,a,b,o"},
			{"cus_A", disputes.FactQuery{Limit: 2}, "z,c"},
		} {
			fs, err := s.Facts(ctx, c.customer, c.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(fs); got != c.want {
				t.Errorf("%s %+v: %s, want %s", c.customer, c.q, got, c.want)
			}
			for _, f := range fs {
				if f.CustomerID != c.customer {
					t.Errorf("customer %s got a fact of %s", c.customer, f.CustomerID)
				}
			}
		}
		fs, _ := s.Facts(ctx, "cus_A", disputes.FactQuery{Kinds: []disputes.FactKind{disputes.FactConsent, disputes.FactNotice}})
		if len(fs) != 2 || fs[0].Policy == nil || *fs[0].Policy != (disputes.PolicyRef{Key: "terms", Version: "3"}) || fs[1].Channel != "email" || fs[1].Template != "renewal_reminder" || fs[1].Policy != nil {
			t.Fatalf("consent/notice read back as %+v", fs)
		}
		if _, err := s.Facts(ctx, "cus_A", disputes.FactQuery{Kinds: []disputes.FactKind{"purchase"}}); !errs.Is(err, errs.EINVALID) {
			t.Fatalf("unknown kind: %v", err)
		}
	})
}

func TestFactsMaskCardNumbers(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		s := newFactStore(t, d)
		ctx := context.Background()
		const card = "4242 4242 4242 4242"
		doc := `{"note":"paid with ` + card + `","card":4111111111111111,"order":12345,"nested":[{"x":"5555-5555-5555-4444"}],"5105105105105100":"key","amount":4900}`
		fact := map[string]any{"id": "f_" + card, "kind": "communication", "occurred_at": factsNow.Add(-time.Hour).Format(time.RFC3339),
			"user_agent": "UA " + card, "account_id": "acct 4000056655665556", "device_id": card, "device_fingerprint": card,
			"channel": "email " + card, "template": "t " + card, "data": json.RawMessage(doc)}
		res := put(t, s, "cus_A", raw(t, fact))
		if res.Accepted != 1 {
			t.Fatalf("%+v", res)
		}
		fs, err := s.Facts(ctx, "cus_A", disputes.FactQuery{})
		if err != nil || len(fs) != 1 {
			t.Fatal(fs, err)
		}
		b, _ := json.Marshal(fs[0])
		if pan.Contains(string(b)) {
			t.Fatalf("card number kept: %s", b)
		}
		// The card number given as a bare JSON number is masked too.
		if strings.Contains(string(b), "4111111111111111") || !strings.Contains(string(fs[0].Data), `"card":"**** **** **** 1111"`) {
			t.Fatalf("data %s", fs[0].Data)
		}
		// Other numbers stay numbers.
		if !strings.Contains(string(fs[0].Data), `"order":12345`) || !strings.Contains(string(fs[0].Data), `"amount":4900`) {
			t.Fatalf("data %s", fs[0].Data)
		}
		if fs[0].ID != "f_**** **** **** 4242" {
			t.Fatalf("id %q", fs[0].ID)
		}
		// Resending the fact with its card number is the same fact.
		if res := put(t, s, "cus_A", raw(t, fact)); res.Duplicates != 1 {
			t.Fatalf("resend %+v", res)
		}
	})
}

func TestPolicyDocuments(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		t.Parallel()
		s := newFactStore(t, d)
		ctx := context.Background()
		eff := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		in := disputes.PolicyInput{Key: "terms", Version: "3", Title: "Terms of Service", Body: "You agree… card 4242424242424242", EffectiveAt: eff}
		doc, created, err := s.PutPolicy(ctx, in)
		if err != nil || !created {
			t.Fatalf("PutPolicy: %v %v", created, err)
		}
		if pan.Contains(doc.Body) || doc.CreatedBy != "system" || !doc.CreatedAt.Equal(factsNow) {
			t.Fatalf("doc %+v", doc)
		}
		// Same content: idempotent.
		if _, created, err := s.PutPolicy(ctx, in); err != nil || created {
			t.Fatalf("same again: %v %v", created, err)
		}
		// Different content: conflict.
		in2 := in
		in2.Body = "changed"
		if _, _, err := s.PutPolicy(ctx, in2); !errs.Is(err, errs.ECONFLICT) {
			t.Fatalf("changed body: %v", err)
		}
		for _, p := range []disputes.PolicyInput{
			{Key: "terms", Version: "2", Title: "Terms", Body: "old", EffectiveAt: eff.AddDate(-1, 0, 0)},
			{Key: "cancellation", Version: "2", Title: "Cancellation", Body: "cancel any time", EffectiveAt: eff},
		} {
			if _, _, err := s.PutPolicy(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		for _, bad := range []disputes.PolicyInput{
			{Version: "1", Title: "t", Body: "b", EffectiveAt: eff},
			{Key: "terms", Title: "t", Body: "b", EffectiveAt: eff},
			{Key: "te rms", Version: "1", Title: "t", Body: "b", EffectiveAt: eff},
			{Key: "terms", Version: "9", Body: "b", EffectiveAt: eff},
			{Key: "terms", Version: "9", Title: "t", EffectiveAt: eff},
			{Key: "terms", Version: "9", Title: "t", Body: "b"},
		} {
			if _, _, err := s.PutPolicy(ctx, bad); !errs.Is(err, errs.EINVALID) {
				t.Errorf("%+v: %v", bad, err)
			}
		}
		got, err := s.PolicyDocument(ctx, "terms", "3")
		if err != nil || got.Title != "Terms of Service" || !got.EffectiveAt.Equal(eff) {
			t.Fatalf("PolicyDocument: %+v %v", got, err)
		}
		if _, err := s.PolicyDocument(ctx, "terms", "4"); !errs.Is(err, errs.ENOTFOUND) {
			t.Fatalf("unknown version: %v", err)
		}
		all, err := s.ListPolicies(ctx, "")
		if err != nil || len(all) != 3 || all[0].Key != "cancellation" || all[1].Version != "2" || all[2].Version != "3" {
			t.Fatalf("ListPolicies: %+v %v", all, err)
		}
		terms, err := s.ListPolicies(ctx, "terms")
		if err != nil || len(terms) != 2 {
			t.Fatalf("ListPolicies(terms): %+v %v", terms, err)
		}
	})
}

func benchFacts(n int) []json.RawMessage {
	out := make([]json.RawMessage, n)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range out {
		out[i] = json.RawMessage(fmt.Sprintf(`{"id":"f_%d","kind":"login","occurred_at":%q,"ip":"203.0.113.%d","device_id":"dev_%d","user_agent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15","data":{"session":"s_%d","method":"password"}}`,
			i, base.Add(time.Duration(i)*time.Minute).Format(time.RFC3339), i%250, i%7, i))
	}
	return out
}

// BenchmarkFactsPut1000 keeps a batch of 1,000 new facts (one request's
// worth) per iteration, on each dialect.
func BenchmarkFactsPut1000(b *testing.B) {
	for _, dialect := range dbtest.Dialects() {
		b.Run(string(dialect), func(b *testing.B) {
			s := newFactStore(b, dbtest.Open(b, dialect))
			facts := benchFacts(1000)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := s.Put(ctx, fmt.Sprint("cus_", i), facts)
				if err != nil || res.Accepted != 1000 {
					b.Fatalf("%+v %v", res, err)
				}
			}
			perBatch := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(perBatch*1000, "ms/batch")
			b.ReportMetric(1000/perBatch, "facts/s")
		})
	}
}
