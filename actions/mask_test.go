package actions_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/pan"
)

// bodies keeps the request bodies sent to the fake Stripe behind it.
type bodies struct {
	next http.Handler
	mu   sync.Mutex
	all  []string
}

func (b *bodies) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	text, _ := url.QueryUnescape(string(body))
	b.mu.Lock()
	b.all = append(b.all, r.Header.Get("Idempotency-Key")+" "+text)
	b.mu.Unlock()
	b.next.ServeHTTP(w, r)
}

// The reproduction: a card number in an action's reason, its
// params, its Idempotency-Key and the approval and rejection notes is masked
// to its last four before anything is stored, audited or sent to Stripe.
func TestCardNumbersInActionsAreMasked(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		fs := &fakeStripe{byKey: map[string][]byte{}}
		rec := &bodies{next: fs}
		srv := httptest.NewServer(rec)
		t.Cleanup(srv.Close)
		h := newHarness(t, d, stripeClient(t, srv.URL))
		c := h.seed("c1", "refund_request", 90000)

		r := h.act(c.ID, "agent", "key 4111-1111-1111-1111", "refund", map[string]any{"amount": 2000}, "goodwill; card 4111 1111 1111 1111")
		if r.status != 201 || r.body["reason"] != "goodwill; card **** **** **** 1111" {
			t.Fatalf("refund: %d %v", r.status, r.body)
		}
		big := h.act(c.ID, "agent", "k2", "refund", map[string]any{"amount": 20000}, "card 5555555555554444")
		h.call("POST", "/api/v1/actions/"+big.body["id"].(string)+"/approve", "sup1", "", map[string]any{"reason": "ok, card 378282246310005"})
		other := h.act(c.ID, "agent", "k3", "apply_credit", map[string]any{"amount": 6000, "currency": "usd", "description": "credit for 6011 1111 1111 1117"}, "card 4222222222222")
		h.call("POST", "/api/v1/actions/"+other.body["id"].(string)+"/reject", "sup1", "", map[string]any{"reason": "no: 4000-0000-0000-0000-006"})

		var leaks []string
		for _, q := range []string{
			"SELECT reason || ' ' || params || ' ' || client_key || ' ' || COALESCE(decision_note, '') FROM actions",
			"SELECT COALESCE(detail, '') || ' ' || COALESCE(CAST(before AS TEXT), '') || ' ' || COALESCE(CAST(after AS TEXT), '') FROM audit_log",
		} {
			var rows []string
			if err := d.Gorm.Raw(q).Scan(&rows).Error; err != nil {
				t.Fatal(err)
			}
			for _, s := range rows {
				leaks = append(leaks, pan.FindStandalone(s)...)
			}
		}
		for _, tl := range h.cases.entries(c.ID) {
			leaks = append(leaks, pan.FindStandalone(tl)...)
		}
		rec.mu.Lock()
		sent := strings.Join(rec.all, "\n")
		rec.mu.Unlock()
		leaks = append(leaks, pan.FindStandalone(sent)...)
		if len(leaks) > 0 {
			t.Fatalf("card numbers stored or sent: %v", leaks)
		}
		if !strings.Contains(sent, "goodwill; card **** **** **** 1111") {
			t.Fatalf("the masked reason did not reach Stripe's metadata:\n%s", sent)
		}
	})
}
