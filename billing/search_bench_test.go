package billing

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// BenchmarkCustomerSearch measures SearchCustomers on PostgreSQL over
// 1,000,000 customers and 1,000,000 charges (RECOURSE_BENCH_CUSTOMERS
// overrides the count), seeded with INSERT … SELECT generate_series. Each
// sub-benchmark is one kind of search; "pk" (Store.Customer by id) is the
// floor to compare against. It reports single-query latency percentiles as
// p50_ms and p99_ms.
//
//	go test ./billing -run '^$' -bench BenchmarkCustomerSearch -benchtime 200x
func BenchmarkCustomerSearch(b *testing.B) {
	dbtest.RequirePostgres(b)
	d := dbtest.Open(b, db.Postgres)
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("RECOURSE_BENCH_CUSTOMERS")); err == nil && v > 0 {
		n = v
	}
	start := time.Now()
	seedSearchBench(b, d, n)
	b.Logf("seeded %d customers and %d charges in %s", n, n, time.Since(start).Round(time.Millisecond))
	s := NewStore(d, clock.System{})
	ctx := context.Background()

	// Targets in the middle of the data; see seedSearchBench for the shapes.
	mid := n / 2
	midID := "cus_" + pad8(mid)
	var midEmail, midName string
	if err := d.Gorm.Raw("SELECT email, name FROM billing_customers WHERE id = ?", midID).Row().Scan(&midEmail, &midName); err != nil {
		b.Fatal(err)
	}
	var card struct{ Brand, Last4, ID string }
	if err := d.Gorm.Raw("SELECT card_brand AS brand, card_last4 AS last4, id FROM billing_charges WHERE customer_id = ? LIMIT 1", midID).Scan(&card).Error; err != nil || card.ID == "" {
		b.Fatalf("charge of %s: %v", midID, err)
	}
	cases := []struct {
		name string
		run  func() (int, error)
	}{
		{"pk", func() (int, error) { _, err := s.Customer(ctx, midID); return 1, err }},
		{"email_exact", search(ctx, s, midEmail)},
		{"email_prefix", search(ctx, s, midEmail[:strings.IndexAny(midEmail, "0123456789")])}, // first.last: ~n/6000 matches
		{"name_prefix_full", search(ctx, s, midName)},
		{"name_prefix_short", search(ctx, s, midName[:2])},
		{"name_fallback_email", search(ctx, s, midEmail[:6])},
		{"name_no_match", search(ctx, s, "zzzz nobody")},
		{"id_customer", search(ctx, s, midID)},
		{"id_charge", search(ctx, s, card.ID)},
		{"card_brand_last4", search(ctx, s, card.Brand+" "+card.Last4)},
		{"card_last4", search(ctx, s, card.Last4)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			if hits, err := c.run(); err != nil || (hits == 0 && c.name != "name_no_match") {
				b.Fatalf("%s: %d hits, %v", c.name, hits, err)
			}
			all := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t := time.Now()
				if _, err := c.run(); err != nil {
					b.Fatal(err)
				}
				all = append(all, time.Since(t))
			}
			b.StopTimer()
			b.ReportMetric(benchMS(benchPct(all, 50)), "p50_ms")
			b.ReportMetric(benchMS(benchPct(all, 99)), "p99_ms")
		})
	}
}

func search(ctx context.Context, s *Store, q string) func() (int, error) {
	return func() (int, error) {
		res, err := s.SearchCustomers(ctx, CustomerSearch{Query: q})
		return len(res.Data), err
	}
}

func pad8(i int) string {
	v := strconv.Itoa(i)
	for len(v) < 8 {
		v = "0" + v
	}
	return v
}

// seedSearchBench writes n customers ("First Last", first.last<i>@example.com,
// from 60 first and 100 last names: about n/6000 customers share a full
// name) and n charges spread over them (four brands, last four spread over
// 0000–9999), then analyses the tables.
func seedSearchBench(b *testing.B, d *db.DB, n int) {
	b.Helper()
	stmts := []string{
		`INSERT INTO billing_customers (id, email, name, created, event_id, event_created, created_at, updated_at)
SELECT 'cus_' || lpad(g::text, 8, '0'),
       lower(f.v) || '.' || lower(l.v) || g || '@example.com',
       f.v || ' ' || l.v,
       t, 'evt_c' || g, t, t, t
FROM generate_series(1, {n}) AS g
CROSS JOIN LATERAL (SELECT timestamptz '2024-01-01' + g * interval '30 seconds' AS t) AS ts
CROSS JOIN LATERAL (SELECT (ARRAY['Ada','Alan','Grace','Edsger','Barbara','Donald','Ken','Dennis','Linus','Guido',
  'Margaret','Frances','Radia','Shafi','Silvio','Leslie','Tony','Niklaus','John','Edith','Ida','Hedy','Katherine','Mary',
  'Annie','Sophie','Karen','Jean','Adele','Lynn','Anita','Carol','Susan','Joan','Evelyn','Marian','Betty','Kathleen',
  'Ruth','Dorothy','Lois','Judith','Elaine','Nancy','Cynthia','Jennifer','Lisa','Anne','Rosalind','Emmy',
  'Zoe','Yuki','Xavier','Wei','Vera','Umar','Tomas','Sven','Rita','Quinn'])[1 + g % 60] AS v) AS f
CROSS JOIN LATERAL (SELECT (ARRAY['Lovelace','Turing','Hopper','Dijkstra','Liskov','Knuth','Thompson','Ritchie','Torvalds',
  'Rossum','Hamilton','Allen','Perlman','Goldwasser','Micali','Lamport','Hoare','Wirth','Backus','Clarke','Rhodes','Lamarr',
  'Johnson','Keller','Easley','Wilson','Jones','Sammet','Goldberg','Conway','Borg','Shaw','Kare','Clarke','Boyd','Harris',
  'Snyder','Booth','Spence','Hoover','Haibt','Spertus','Estrin','Lynch','Dwork','Widom','Tardos','Wing','Franklin','Noether',
  'Curie','Meitner','Bell','Faraday','Maxwell','Newton','Euler','Gauss','Riemann','Hilbert','Cantor','Godel','Church','Kleene',
  'Post','Markov','Kolmogorov','Shannon','Hamming','Huffman','Codd','Gray','Stonebraker','Bachman','Chen','Date','Ullman',
  'Aho','Hopcroft','Karp','Cook','Levin','Rabin','Scott','Floyd','Tarjan','Pnueli','Milner','Sutherland','Engelbart','Kay',
  'Cerf','Kahn','Berners','Diffie','Hellman','Rivest','Shamir','Adleman','Merkle'])[1 + (g / 60) % 100] AS v) AS l`,
		`INSERT INTO billing_charges (id, customer_id, amount, currency, status, paid, card_brand, card_last4, created, event_id, event_created, created_at, updated_at)
SELECT 'ch_' || lpad(g::text, 8, '0'),
       'cus_' || lpad((1 + (g::bigint * 7919) % {n})::text, 8, '0'),
       1000 + g % 9000, 'usd', 'succeeded', TRUE,
       (ARRAY['visa','mastercard','amex','discover'])[1 + (g / 7) % 4],
       lpad(((g::bigint * 2654435761) % 10000)::text, 4, '0'),
       t, 'evt_ch' || g, t, t, t
FROM generate_series(1, {n}) AS g
CROSS JOIN LATERAL (SELECT timestamptz '2024-01-01' + g * interval '30 seconds' AS t) AS ts`,
		`ANALYZE billing_customers`,
		`ANALYZE billing_charges`,
	}
	for _, q := range stmts {
		q = strings.ReplaceAll(q, "{n}", strconv.Itoa(n))
		if err := d.Gorm.Exec(q).Error; err != nil {
			b.Fatalf("seed: %v\n%s", err, q)
		}
	}
}

func benchPct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := len(s) * p / 100
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}

func benchMS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
