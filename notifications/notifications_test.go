package notifications

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/apispec"
	"github.com/recourse-hq/recourse/internal/events"
	"github.com/recourse-hq/recourse/internal/stdwebhooks"
)

// fakeResolver answers from a table; other hosts do not resolve.
type fakeResolver map[string][]string

func (f fakeResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	ips, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []net.IPAddr
	for _, s := range ips {
		out = append(out, net.IPAddr{IP: net.ParseIP(s)})
	}
	return out, nil
}

var resolver = fakeResolver{
	"hooks.example.com":     {"93.184.216.34"},
	"localhost.example.com": {"127.0.0.1"},
	"mixed.example.com":     {"93.184.216.34", "10.1.2.3"},
	"v6private.example.com": {"fd12:3456::1"},
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url          string
		allowPrivate bool
		refused      bool
		private      bool // refused as a private address
	}{
		{"https://hooks.example.com/services/T/B/x", false, false, false},
		{"https://93.184.216.34/hook", false, false, false},
		{"http://hooks.example.com/hook", false, true, false},
		{"ftp://hooks.example.com/hook", false, true, false},
		{"hooks.example.com/hook", false, true, false},
		{"https://user:pw@hooks.example.com/hook", false, true, false},
		{"https://127.0.0.1/hook", false, true, true},
		{"https://127.9.9.9/hook", false, true, true},
		{"https://10.0.0.1/hook", false, true, true},
		{"https://172.16.0.1/hook", false, true, true},
		{"https://172.31.255.255/hook", false, true, true},
		{"https://172.32.0.1/hook", false, false, false}, // one past 172.16/12
		{"https://192.168.1.1/hook", false, true, true},
		{"https://169.254.169.254/latest/meta-data", false, true, true},
		{"https://100.64.0.1/hook", false, true, true},
		{"https://0.0.0.0/hook", false, true, true},
		{"https://[::1]/hook", false, true, true},
		{"https://[::]/hook", false, true, true},
		{"https://[fc00::1]/hook", false, true, true},
		{"https://[fdff:ffff::1]/hook", false, true, true},
		{"https://[fe80::1]/hook", false, true, true},
		{"https://[::ffff:127.0.0.1]/hook", false, true, true},
		{"https://[2001:db8::1]/hook", false, false, false},
		{"https://localhost.example.com/hook", false, true, true},
		{"https://mixed.example.com/hook", false, true, true},
		{"https://v6private.example.com/hook", false, true, true},
		{"https://nowhere.example.com/hook", false, true, false},
		// An admin's explicit choice: private addresses and http allowed.
		{"https://127.0.0.1/hook", true, false, false},
		{"http://127.0.0.1:8080/hook", true, false, false},
		{"https://localhost.example.com/hook", true, false, false},
		{"http://192.168.1.1/hook", true, false, false},
		{"ftp://127.0.0.1/hook", true, true, false},
	} {
		err := CheckURL(context.Background(), resolver, tc.url, tc.allowPrivate)
		if (err != nil) != tc.refused {
			t.Errorf("CheckURL(%s, allow_private=%v) = %v, refused want %v", tc.url, tc.allowPrivate, err, tc.refused)
		}
		if tc.private != errors.Is(err, ErrPrivateAddress) {
			t.Errorf("CheckURL(%s) = %v, private-address refusal want %v", tc.url, err, tc.private)
		}
	}
}

// The dialer refuses a blocked address even when the URL passed the load
// check (DNS changed since): a delivery to a loopback server fails.
func TestDialGuardRefusesLoopback(t *testing.T) {
	t.Parallel()
	hit := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hit = true }))
	defer srv.Close()
	_, err := newClient(2*time.Second, false).Post(srv.URL, "application/json", strings.NewReader("{}"))
	if err == nil || !errors.Is(err, ErrPrivateAddress) || hit {
		t.Fatalf("guarded client reached %s (err %v)", srv.URL, err)
	}
	resp, err := newClient(2*time.Second, true).Post(srv.URL, "application/json", strings.NewReader("{}"))
	if err != nil || !hit {
		t.Fatalf("allow_private client: %v", err)
	}
	resp.Body.Close()
}

func validPolicy() Policy {
	return Policy{
		Destinations: []Destination{
			{Name: "desk", Type: TypeSlack, URL: "https://hooks.example.com/services/T/B/x"},
			{Name: "siem", Type: TypeWebhook, URL: "https://hooks.example.com/in", Secret: "whsec_c2VjcmV0"},
		},
		Rules: []Rule{{On: []string{events.TypeDisputeCreated}, To: []string{"desk"}}},
	}
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	if err := validPolicy().Validate(context.Background(), resolver); err != nil {
		t.Fatalf("valid policy refused: %v", err)
	}
	if err := (Policy{}).Validate(context.Background(), resolver); err != nil {
		t.Fatalf("empty policy refused: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Policy)
		want string
	}{
		{"unknown type", func(p *Policy) { p.Destinations[0].Type = "email" }, `type "email" is unknown`},
		{"duplicate name", func(p *Policy) { p.Destinations[1].Name = "desk" }, "used twice"},
		{"bad name", func(p *Policy) { p.Destinations[0].Name = "Desk Alerts" }, "name"},
		{"webhook without secret", func(p *Policy) { p.Destinations[1].Secret = "" }, "signing secret"},
		{"private url", func(p *Policy) { p.Destinations[0].URL = "https://10.0.0.5/hook" }, "private"},
		{"unknown destination", func(p *Policy) { p.Rules[0].To = []string{"nope"} }, `destination "nope" is not defined`},
		{"unknown event type", func(p *Policy) { p.Rules[0].On = []string{"dispute.opened"} }, `event type "dispute.opened" is unknown`},
		{"rule without on", func(p *Policy) { p.Rules[0].On = nil }, "needs on"},
		{"rule without to", func(p *Policy) { p.Rules[0].To = nil }, "needs on"},
	} {
		p := validPolicy()
		tc.edit(&p)
		if err := p.Validate(context.Background(), resolver); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

func TestRoute(t *testing.T) {
	t.Parallel()
	ev := func(typ string, f events.CaseFacts) events.Event {
		b, _ := json.Marshal(f)
		return events.Event{ID: 1, Type: typ, Data: b}
	}
	dispute := events.CaseFacts{CaseID: "CASE-1", Kind: "dispute", Team: "disputes", Priority: "high", BusinessLine: "live"}
	p := Policy{Rules: []Rule{
		{On: []string{events.TypeDisputeCreated}, To: []string{"all"}},
		{On: []string{events.TypeDisputeCreated, events.TypeSLABreached}, Kinds: []string{"dispute"}, To: []string{"kinds"}},
		{On: []string{events.TypeDisputeCreated}, Teams: []string{"disputes", "risk"}, To: []string{"teams"}},
		{On: []string{events.TypeDisputeCreated}, Priorities: []string{"urgent"}, To: []string{"urgent"}},
		{On: []string{events.TypeDisputeCreated}, BusinessLines: []string{"live"}, To: []string{"live", "all"}},
		{On: []string{events.TypeWebhookDeadLettered}, To: []string{"ops"}},
		{On: []string{events.TypeWebhookDeadLettered}, Kinds: []string{"dispute"}, To: []string{"never"}},
	}}
	for _, tc := range []struct {
		name string
		ev   events.Event
		want string
	}{
		{"every filter matches; a destination named twice goes once", ev(events.TypeDisputeCreated, dispute), "all,kinds,teams,live"},
		{"priority one below the filter", ev(events.TypeDisputeCreated, func() events.CaseFacts { f := dispute; f.Priority = "high"; return f }()), "all,kinds,teams,live"},
		{"priority at the filter", ev(events.TypeDisputeCreated, func() events.CaseFacts { f := dispute; f.Priority = "urgent"; return f }()), "all,kinds,teams,urgent,live"},
		{"other team, other line", ev(events.TypeDisputeCreated, func() events.CaseFacts { f := dispute; f.Team, f.BusinessLine = "general", "ecommerce"; return f }()), "all,kinds"},
		{"second team of a filter", ev(events.TypeDisputeCreated, func() events.CaseFacts { f := dispute; f.Team = "risk"; return f }()), "all,kinds,teams,live"},
		{"no business line: a business_lines filter does not match", ev(events.TypeDisputeCreated, func() events.CaseFacts { f := dispute; f.BusinessLine = ""; return f }()), "all,kinds,teams"},
		{"other kind", ev(events.TypeSLABreached, func() events.CaseFacts { f := dispute; f.Kind = "payment_failure"; return f }()), ""},
		{"type not in on", ev(events.TypeApprovalRequested, dispute), ""},
		{"event without kind: a kinds filter does not match", events.Event{Type: events.TypeWebhookDeadLettered, Data: []byte(`{"event_id":"evt_1"}`)}, "ops"},
	} {
		if got := strings.Join(p.Route(tc.ev), ","); got != tc.want {
			t.Errorf("%s: Route = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	base, maxWait := 10*time.Second, 5*time.Minute
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{
		{0, 10 * time.Second}, {1, 10 * time.Second}, {2, 20 * time.Second}, {3, 40 * time.Second},
		{5, 160 * time.Second}, {6, 5 * time.Minute}, {7, 5 * time.Minute}, {1000, 5 * time.Minute},
	} {
		if got := Backoff(base, maxWait, tc.attempt); got != tc.want {
			t.Errorf("Backoff(attempt %d) = %s, want %s", tc.attempt, got, tc.want)
		}
	}
}

// A webhook delivery verifies with stdwebhooks.Verify under the
// destination's secret, and its body is {type, id, at, data}.
func TestWebhookSignatureVerifies(t *testing.T) {
	t.Parallel()
	secret := "whsec_c2VjcmV0LWtleS1mb3ItdGVzdHM="
	var got struct {
		h    http.Header
		body []byte
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.h = r.Header.Clone()
		got.body, _ = io.ReadAll(r.Body)
	}))
	defer srv.Close()
	p := Policy{Destinations: []Destination{{Name: "siem", Type: TypeWebhook, URL: srv.URL, Secret: secret, AllowPrivate: true}}}
	n, err := New(Options{Policy: p, Clock: fixedClock{time.Unix(1_800_000_000, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1_799_999_990, 0).UTC()
	c := claimed{row: deliveryRow{ID: "ntf_000000000007_siem", EventType: events.TypeActionFailed, Destination: "siem"}, data: `{"case_id":"CASE-9"}`, at: at}
	if err := n.post(context.Background(), p.Destinations[0], c); err != nil {
		t.Fatal(err)
	}
	key, _ := stdwebhooks.Key(secret)
	id, err := stdwebhooks.Verify(got.h, got.body, [][]byte{key}, time.Unix(1_800_000_000, 0), stdwebhooks.DefaultTolerance)
	if err != nil || id != c.row.ID {
		t.Fatalf("Verify = %q, %v", id, err)
	}
	if err := apispec.ValidateWebhook("notification", got.h, got.body); err != nil {
		t.Fatalf("OpenAPI contract: %v", err)
	}
	other, _ := stdwebhooks.Key("another secret")
	if _, err := stdwebhooks.Verify(got.h, got.body, [][]byte{other}, time.Unix(1_800_000_000, 0), stdwebhooks.DefaultTolerance); !errors.Is(err, stdwebhooks.ErrNoMatch) {
		t.Fatalf("Verify with another key = %v", err)
	}
	var body struct {
		Type string          `json:"type"`
		ID   string          `json:"id"`
		At   time.Time       `json:"at"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(got.body, &body); err != nil || body.Type != events.TypeActionFailed || body.ID != c.row.ID || !body.At.Equal(at) || string(body.Data) != c.data {
		t.Fatalf("body = %s (%v)", got.body, err)
	}
}

func TestSlackMessage(t *testing.T) {
	t.Parallel()
	amount := int64(12345)
	due := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	data, _ := json.Marshal(events.CaseFacts{CaseID: "CASE-42", Kind: "dispute", Team: "disputes", Priority: "high",
		BusinessLine: "live", Title: "Dispute du_1: fraudulent", Amount: &amount, Currency: "usd", DueAt: &due})
	b, err := slackMessage(events.TypeDisputeCreated, data, "https://desk.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"type":"header"`, `"text":"New dispute"`, "Dispute du_1: fraudulent", "*Kind*\\ndispute", "*Priority*\\nhigh",
		"*Team*\\ndisputes", "*Business line*\\nlive", "123.45 USD", "2026-12-03 17:00 UTC", `"url":"https://desk.example.com/cases/CASE-42"`} {
		if !strings.Contains(s, want) {
			t.Errorf("slack message lacks %s: %s", want, s)
		}
	}
}

// Credentials never show in the policy as rendered for GET /policy.
func TestDestinationJSONHidesCredentials(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(validPolicy())
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"services/T/B/x", "whsec_c2VjcmV0", "c2VjcmV0"} {
		if strings.Contains(string(b), secret) {
			t.Fatalf("rendered policy shows %q: %s", secret, b)
		}
	}
	if !strings.Contains(string(b), `"url":"https://hooks.example.com/…"`) || !strings.Contains(string(b), `"secret":"set (sha256:`) {
		t.Fatalf("rendered policy: %s", b)
	}
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }
