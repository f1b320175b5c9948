package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripemock"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// providerCall is one request the Stripe proxy saw.
type providerCall struct {
	method, path, key string
	executed          bool // forwarded to stripe-mock, which answered 2xx: the effect happened
	answered          int  // what the caller got (0: no answer, it timed out)
}

// stripeProxy stands in front of stripe-mock. While faulty, of the POSTs
// it sees, every 3rd is forwarded and executed but its answer is never
// sent (the caller times out: an effect in doubt) and every 3rd + 1 is
// answered 500 without being forwarded (nothing happened).
type stripeProxy struct {
	target string
	faulty atomic.Bool
	posts  atomic.Int64
	client *http.Client

	mu    sync.Mutex
	calls []providerCall
}

func newStripeProxy(t *testing.T, target string) (*stripeProxy, string) {
	t.Helper()
	p := &stripeProxy{target: target, client: &http.Client{Timeout: 30 * time.Second}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p, "http://" + ln.Addr().String()
}

func (p *stripeProxy) log(c providerCall) {
	p.mu.Lock()
	p.calls = append(p.calls, c)
	p.mu.Unlock()
}

func (p *stripeProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c := providerCall{method: r.Method, path: r.URL.Path, key: r.Header.Get("Idempotency-Key")}
	fault := 0
	if r.Method == http.MethodPost && p.faulty.Load() {
		fault = int(p.posts.Add(1) % 3) // 0: lose the answer, 1: 500, 2: pass
	} else {
		fault = 2
	}
	if fault == 1 {
		c.answered = http.StatusInternalServerError
		p.log(c)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"error":{"type":"api_error","message":"An unknown error occurred (injected by the fault suite)."}}`))
		return
	}
	req, _ := http.NewRequestWithContext(context.WithoutCancel(r.Context()), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	req.Header = r.Header.Clone()
	resp, err := p.client.Do(req)
	if err != nil {
		p.log(c)
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	c.executed = r.Method == http.MethodPost && resp.StatusCode/100 == 2
	if fault == 0 {
		p.log(c) // executed, answer lost
		<-r.Context().Done()
		return
	}
	c.answered = resp.StatusCode
	p.log(c)
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
}

// api is a small client of the service's API with an admin token.
type api struct {
	urls   []string
	token  string
	client *http.Client
}

func (a *api) do(n int, method, path string, body any, header map[string]string) (int, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.urls[n%len(a.urls)]+path, rd)
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m, nil
}

// refundableCharges returns charges of stories without refunds, disputes or
// fraud warnings, newest first.
func refundableCharges(events []stripetest.Event, n int) []string {
	calm := map[string]bool{stripetest.StoryActiveRenews: true, stripetest.StoryTrialConverts: true, stripetest.StoryCancelRetained: true}
	var out []string
	for i := len(events) - 1; i >= 0 && len(out) < n; i-- {
		ev := events[i]
		if ev.Type == "charge.succeeded" && calm[ev.Story] {
			out = append(out, ev.Object["id"].(string))
		}
	}
	return out
}

// TestProviderFaults requests refunds through two replicas while the
// provider, behind a proxy, loses answers of calls it executed and answers
// 500 to others, and one replica is killed with kill -9 mid-way; every
// client request is sent twice at once (a double click) and retried with
// its Idempotency-Key until it has a final answer.
// At the end every action is final, each executed at most once at the
// provider (counted at the proxy), and what each action says happened is
// what the provider did.
func TestProviderFaults(t *testing.T) {
	requireSuite(t)
	began := time.Now()
	ctx := context.Background()
	mock := stripemock.Start(t)
	proxy, proxyURL := newStripeProxy(t, mock.URL)
	url := dbtest.NewPostgresURL(t)
	pg, viaProxy := dbtest.NewProxy(t, url) // the replicas' way to PostgreSQL, cut mid-action
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policy, []byte("actions:\n  stuck_after: 2s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vars := func() map[string]string {
		return map[string]string{"DATABASE_URL": viaProxy, "RECOURSE_STRIPE_API_KEY": "sk_test_faults",
			"RECOURSE_STRIPE_API_BASE": proxyURL, "RECOURSE_STRIPE_TIMEOUT": "1s", "RECOURSE_POLICY_FILE": policy}
	}
	a := newServer(t, "a", vars())
	b := newServer(t, "b", vars())

	start := time.Now().UTC().Add(-40 * 24 * time.Hour).Truncate(24 * time.Hour)
	events := stripetest.New(2222).Mix(60, start)
	f := newFeeder(a.url, b.url)
	f.run(ctx, events, 16)
	d := openDB(t, url)
	drain(t, d, 2*time.Minute)
	charges := refundableCharges(events, 30)
	if len(charges) < 20 {
		t.Fatalf("only %d refundable charges in the stories", len(charges))
	}
	token := cli(t, url, "token", "create", "--name", "faults-admin", "--role", "admin")
	c := &api{urls: []string{a.url, b.url}, token: token, client: &http.Client{Timeout: 20 * time.Second}}
	caseIDs := make([]string, len(charges))
	for i, ch := range charges {
		code, m, err := c.do(i, "POST", "/api/v1/cases", map[string]any{"kind": "refund_request", "channel": "chat",
			"title": "Refund asked in chat", "links": map[string]any{"charge": ch}}, nil)
		if err != nil || code != 201 {
			t.Fatalf("open case on %s: %d %v %v", ch, code, m, err)
		}
		caseIDs[i] = m["id"].(string)
	}

	// Request one refund per case, each sent twice at once, retried until final.
	proxy.faulty.Store(true)
	type outcome struct {
		key     string
		ids     map[string]bool
		status  string
		answers []int
	}
	outcomes := make([]*outcome, len(caseIDs))
	var errCodes sync.Map
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, caseID := range caseIDs {
		o := &outcome{key: fmt.Sprintf("faults-refund-%03d", i), ids: map[string]bool{}}
		outcomes[i] = o
		var mu sync.Mutex
		for copy := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				body := map[string]any{"type": "refund", "params": map[string]any{"amount": 100}, "reason": "refund asked in chat"}
				deadline := time.Now().Add(2 * time.Minute)
				for n := i + copy; time.Now().Before(deadline); n++ {
					code, m, err := c.do(n, "POST", "/api/v1/cases/"+caseID+"/actions", body, map[string]string{"Idempotency-Key": o.key})
					mu.Lock()
					o.answers = append(o.answers, code)
					if code == 409 || code >= 500 {
						if e, ok := m["error"].(map[string]any); ok {
							errCodes.Store(fmt.Sprintf("%d %v: %v", code, e["code"], e["message"]), true)
						}
					}
					if id, _ := m["id"].(string); id != "" {
						o.ids[id] = true
					}
					mu.Unlock()
					inFlight := false
					if e, ok := m["error"].(map[string]any); ok {
						inFlight = e["code"] == "idempotency_key_in_flight"
					}
					if err == nil && (code == 201 || code == 409 && !inFlight || code == 422) {
						return
					}
					time.Sleep(300 * time.Millisecond)
				}
			}()
		}
	}
	// Mid-way, replica a dies with kill -9, holding whatever it was
	// executing, and comes back; then PostgreSQL is cut for 3 s, between
	// provider calls and the recording of their outcomes.
	phase := time.Now()
	killed := make(chan error, 1)
	go func() {
		time.Sleep(1500 * time.Millisecond)
		a.kill()
		time.Sleep(500 * time.Millisecond)
		err := a.startErr()
		time.Sleep(2 * time.Second)
		pg.Stop()
		time.Sleep(3 * time.Second)
		pg.Start()
		killed <- err
	}()
	wg.Wait()
	if err := <-killed; err != nil {
		t.Fatal(err)
	}
	proxy.faulty.Store(false)
	t.Logf("every request answered finally %s after the first (replica a killed at 1.5 s, PostgreSQL cut from 4 s to 7 s)", time.Since(phase).Round(100*time.Millisecond))

	// Wait until every action is final (the resumer finishes those in doubt).
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var open int64
		d.Gorm.Raw("SELECT COUNT(*) FROM actions WHERE status IN ('executing', 'pending_approval')").Scan(&open)
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d actions still executing or waiting after 2 minutes", open)
		}
		time.Sleep(200 * time.Millisecond)
	}

	var rows []actionFact
	if err := d.Gorm.Raw("SELECT id, client_key, provider_key, status FROM actions ORDER BY id").Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	proxy.mu.Lock()
	calls := append([]providerCall(nil), proxy.calls...)
	proxy.mu.Unlock()
	s, err := readSnapshot(ctx, d.Gorm)
	if err != nil {
		t.Fatal(err)
	}
	r := balance(ledgerInput{events: events, deliveries: len(events), acked: f.ackedIDs()}, s)
	pr := balanceProvider(len(outcomes), rows, calls)
	r.Actions, r.ProvDouble, r.Lost = pr.Actions, pr.ProvDouble, r.Lost+pr.Lost
	r.Problems = append(r.Problems, pr.Problems...)
	for _, o := range outcomes {
		if len(o.ids) != 1 {
			r.Problems = append(r.Problems, fmt.Sprintf("client key %s answered with %d different actions %v", o.key, len(o.ids), o.ids))
		}
	}
	r.Fault = "provider: lost answers, 500s, kill -9, PostgreSQL cut mid-action (2 replicas)"
	r.Elapsed, r.Retried = time.Since(began), int(f.retries.Load())
	t.Logf("provider calls: %s", summarizeCalls(calls))
	codes := map[int]int{}
	for _, o := range outcomes {
		for _, c := range o.answers {
			codes[c]++
		}
	}
	var attempts []struct{ Attempts, N int }
	d.Gorm.Raw("SELECT attempts, COUNT(*) AS n FROM actions GROUP BY attempts ORDER BY attempts").Scan(&attempts)
	t.Logf("answers to the clients (0: no answer): %v; actions by provider attempts: %v", codes, attempts)
	errCodes.Range(func(k, _ any) bool { t.Logf("answer: %s", k); return true })
	if codes[500] > 0 {
		// The API promises 429/503 when Stripe fails, never a 500.
		r.Problems = append(r.Problems, fmt.Sprintf("the API answered 500 %d times", codes[500]))
	}
	record(t, r)
	for _, s := range []*server{a, b} {
		for _, line := range s.logLines("status=500") {
			_, rid, _ := strings.Cut(line, "request_id=")
			rid, _, _ = strings.Cut(rid, " ")
			t.Logf("%s: %s\n  %s", s.name, line, strings.Join(s.logLines(rid), "\n  "))
		}
	}
	if r.Actions < 20 {
		t.Errorf("only %d actions were requested", r.Actions)
	}
}

// actionFact is what the ledger needs of one action.
type actionFact struct{ ID, ClientKey, ProviderKey, Status string }

// balanceProvider checks actions against the calls the provider saw:
// one action per client request; no POST without an idempotency key or
// with a key no action owns; each action's effect executed at most once
// — Stripe collapses executions with one idempotency key into one, so a
// double execution is one logical request reaching the provider under two
// keys; a succeeded action executed, a failed one did not.
func balanceProvider(requests int, actions []actionFact, calls []providerCall) ledgerRow {
	r := ledgerRow{Actions: len(actions)}
	problem := func(format string, args ...any) {
		if len(r.Problems) < maxProblems {
			r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
		}
	}
	if len(actions) != requests {
		problem("%d actions for %d client requests", len(actions), requests)
	}
	executed := map[string]int{} // provider key → executions
	for _, c := range calls {
		if c.method != http.MethodPost {
			continue
		}
		if c.key == "" {
			r.ProvDouble++
			problem("POST %s without an idempotency key", c.path)
			continue
		}
		if c.executed {
			executed[c.key]++
		}
	}
	owner := map[string]actionFact{}
	perClient := map[string][]string{}
	for _, a := range actions {
		owner[a.ProviderKey] = a
		perClient[a.ClientKey] = append(perClient[a.ClientKey], a.ID)
	}
	for key, n := range executed {
		if _, ok := owner[key]; !ok {
			r.ProvDouble += n
			problem("provider executed key %s %d times; no action owns it", key, n)
		}
	}
	for ck, ids := range perClient {
		if len(ids) > 1 {
			r.ProvDouble += len(ids) - 1
			problem("client key %s made %d actions %v", ck, len(ids), ids)
		}
	}
	for _, a := range actions {
		n := executed[a.ProviderKey]
		switch a.Status {
		case "succeeded":
			if n == 0 {
				r.Lost++
				problem("action %s succeeded but the provider never executed %s", a.ID, a.ProviderKey)
			}
		case "failed", "refused", "rejected":
			if n > 0 {
				r.Lost++
				problem("action %s is %s but the provider executed %s %d time(s)", a.ID, a.Status, a.ProviderKey, n)
			}
		default:
			problem("action %s still %s", a.ID, a.Status)
		}
	}
	return r
}

func summarizeCalls(calls []providerCall) string {
	counts := map[string]int{}
	for _, c := range calls {
		k := c.method + " " + c.path
		if strings.Count(k, "/") > 2 {
			k = k[:strings.LastIndex(k, "/")] + "/…"
		}
		switch {
		case c.answered == 0 && c.executed:
			k += " (executed, answer lost)"
		case c.answered == 500:
			k += " (500, not executed)"
		default:
			k += fmt.Sprintf(" (%d)", c.answered)
		}
		counts[k]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %5d %s", counts[k], k)
	}
	return b.String()
}
