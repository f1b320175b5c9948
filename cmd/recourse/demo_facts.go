package main

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"time"

	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// demoPolicies are the merchant's policy documents the demo's consent facts
// cite: terms v3 and cancellation v2 are in force, terms v2 is the one they
// replaced.
var demoPolicies = []disputes.PolicyInput{
	{Key: "terms", Version: "2", Title: "Terms of Service (2024)", EffectiveAt: time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC),
		Body: "These terms govern your subscription. Subscriptions renew automatically each period until cancelled."},
	{Key: "terms", Version: "3", Title: "Terms of Service", EffectiveAt: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC),
		Body: "These terms govern your subscription. Your subscription renews automatically at the end of each billing period " +
			"at the price shown at checkout until you cancel. You can cancel at any time in Settings → Billing; cancellation " +
			"takes effect at the end of the current period. We email a reminder before each annual renewal and a receipt after every charge."},
	{Key: "cancellation", Version: "2", Title: "Cancellation policy", EffectiveAt: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC),
		Body: "Cancel any time from Settings → Billing or by replying to any receipt. Access continues until the end of the paid period; " +
			"periods already started are not refunded except where the law requires it."},
	{Key: "refund", Version: "1", Title: "Refund policy", EffectiveAt: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC),
		Body: "First-time subscribers may ask for a full refund within 14 days of their first charge."},
}

// demoCustomer is what the demo knows of a customer whose story has a
// dispute: when they first appeared, when their invoices were paid, when the
// dispute arrived.
type demoCustomer struct {
	id       string
	first    time.Time
	paid     []time.Time
	disputed time.Time
}

// disputedCustomers finds, in the demo's events, the customers with a
// dispute (a dispute names its charge; a charge or invoice names the
// customer), ordered by id.
func disputedCustomers(events []stripetest.Event) []demoCustomer {
	chargeCustomer := map[string]string{}
	byID := map[string]*demoCustomer{}
	get := func(id string, at time.Time) *demoCustomer {
		c, ok := byID[id]
		if !ok {
			c = &demoCustomer{id: id, first: at}
			byID[id] = c
		}
		if at.Before(c.first) {
			c.first = at
		}
		return c
	}
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	for _, e := range events {
		o := e.Object
		switch str(o, "object") {
		case "customer":
			get(str(o, "id"), e.Created)
		case "charge":
			if c := str(o, "customer"); c != "" {
				chargeCustomer[str(o, "id")] = c
			}
		case "invoice":
			if c, ch := str(o, "customer"), str(o, "charge"); c != "" && ch != "" {
				chargeCustomer[ch] = c
			}
		}
		if c := str(o, "customer"); c != "" {
			dc := get(c, e.Created)
			if e.Type == "invoice.paid" {
				dc.paid = append(dc.paid, e.Created)
			}
		}
	}
	var out []demoCustomer
	seen := map[string]bool{}
	for _, e := range events {
		if str(e.Object, "object") != "dispute" || e.Type != "charge.dispute.created" {
			continue
		}
		cus := chargeCustomer[str(e.Object, "charge")]
		if cus == "" || seen[cus] {
			continue
		}
		seen[cus] = true
		c := *byID[cus]
		c.disputed = e.Created
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// demoFacts is what the merchant's product would have sent about c: a
// sign-up with consent to terms v3 and cancellation policy v2, logins and
// usage every few days until the dispute, a renewal reminder before and a
// receipt after every paid invoice, a support conversation and delivery
// records. Everything derives from c, so the same events give the same facts.
func demoFacts(c demoCustomer) []disputes.FactInput {
	h := fnv.New32a()
	_, _ = h.Write([]byte(c.id))
	n := h.Sum32()
	ip := fmt.Sprintf("203.0.113.%d", 1+n%250)
	device := fmt.Sprintf("dev_%06x", n&0xffffff)
	fp := fmt.Sprintf("fp_%08x", n^0x5bd1e995)
	account := "acct_" + c.id
	ua := []string{
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
	}[n%3]
	rfc := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	data := func(v map[string]any) json.RawMessage { b, _ := json.Marshal(v); return b }
	signup := c.first.Add(-2 * time.Minute)
	end := c.disputed
	if end.IsZero() || end.Before(signup) {
		end = signup.Add(30 * 24 * time.Hour)
	}
	var out []disputes.FactInput
	add := func(f disputes.FactInput) { out = append(out, f) }
	add(disputes.FactInput{ID: "signup", Kind: disputes.FactSignup, OccurredAt: rfc(signup), IP: ip, DeviceID: device,
		DeviceFingerprint: fp, AccountID: account, UserAgent: ua, Channel: "web", Data: data(map[string]any{"email_verified": true, "plan_selected": "pro"})})
	for _, p := range []disputes.PolicyRef{{Key: "terms", Version: "3"}, {Key: "cancellation", Version: "2"}} {
		add(disputes.FactInput{ID: "consent_" + p.Key + "_v" + p.Version, Kind: disputes.FactConsent, OccurredAt: rfc(signup.Add(time.Minute)),
			IP: ip, DeviceID: device, AccountID: account, UserAgent: ua, Policy: &disputes.PolicyRef{Key: p.Key, Version: p.Version}, Channel: "web",
			Data: data(map[string]any{"flow": "checkout", "checkbox": "I agree to the " + p.Key + " policy (v" + p.Version + ")", "checked": true})})
	}
	add(disputes.FactInput{ID: "delivery_access", Kind: disputes.FactDelivery, OccurredAt: rfc(signup.Add(2 * time.Minute)), AccountID: account,
		Channel: "web", Data: data(map[string]any{"what": "account access granted", "plan": "pro"})})
	k := 0
	for t := signup.Add(26 * time.Hour); t.Before(end) && k < 20; t = t.Add(time.Duration(60+n%36) * time.Hour) {
		k++
		add(disputes.FactInput{ID: fmt.Sprintf("login_%02d", k), Kind: disputes.FactLogin, OccurredAt: rfc(t), IP: ip, DeviceID: device,
			DeviceFingerprint: fp, AccountID: account, UserAgent: ua, Data: data(map[string]any{"method": "password"})})
		add(disputes.FactInput{ID: fmt.Sprintf("usage_%02d", k), Kind: disputes.FactUsage, OccurredAt: rfc(t.Add(3 * time.Minute)), IP: ip,
			DeviceID: device, AccountID: account, Data: data(map[string]any{"feature": []string{"editor", "export", "templates"}[k%3], "minutes": 10 + (int(n)+k*7)%50})})
	}
	for i, p := range c.paid {
		if i > 0 {
			add(disputes.FactInput{ID: fmt.Sprintf("notice_renewal_%02d", i), Kind: disputes.FactNotice, OccurredAt: rfc(p.Add(-72 * time.Hour)),
				AccountID: account, Channel: "email", Template: "renewal_reminder", Data: data(map[string]any{"subject": "Your subscription renews in 3 days"})})
		}
		add(disputes.FactInput{ID: fmt.Sprintf("notice_receipt_%02d", i), Kind: disputes.FactNotice, OccurredAt: rfc(p.Add(time.Minute)),
			AccountID: account, Channel: "email", Template: "receipt", Data: data(map[string]any{"subject": "Your receipt"})})
		add(disputes.FactInput{ID: fmt.Sprintf("delivery_period_%02d", i), Kind: disputes.FactDelivery, OccurredAt: rfc(p.Add(2 * time.Minute)),
			AccountID: account, Data: data(map[string]any{"what": "paid period started: full access to the pro plan"})})
	}
	if t := signup.Add(5 * 24 * time.Hour); t.Before(end) {
		add(disputes.FactInput{ID: "comm_support_1", Kind: disputes.FactCommunication, OccurredAt: rfc(t), AccountID: account, Channel: "email",
			Data: data(map[string]any{"direction": "inbound", "subject": "How do I export my projects?", "body": "Loving the editor so far. How do I export?"})})
		add(disputes.FactInput{ID: "comm_support_2", Kind: disputes.FactCommunication, OccurredAt: rfc(t.Add(40 * time.Minute)), AccountID: account,
			Channel: "email", Template: "support_reply", Data: data(map[string]any{"direction": "outbound", "subject": "Re: How do I export my projects?", "body": "Use File → Export; every format is included in your plan."})})
	}
	return out
}

// seedDemoFacts keeps the demo's policy documents and, for every customer
// with a dispute, the facts their product would have sent, so each dispute
// has a full evidence workbench. It returns the customers and facts kept.
func seedDemoFacts(ctx context.Context, store *disputes.FactStore, events []stripetest.Event) (customers, facts int, err error) {
	for _, p := range demoPolicies {
		if _, _, err := store.PutPolicy(ctx, p); err != nil {
			return 0, 0, fmt.Errorf("demo policy %s v%s: %w", p.Key, p.Version, err)
		}
	}
	for _, c := range disputedCustomers(events) {
		res, err := store.PutFacts(ctx, c.id, demoFacts(c))
		if err != nil {
			return customers, facts, fmt.Errorf("demo facts for %s: %w", c.id, err)
		}
		if len(res.Rejected) > 0 {
			return customers, facts, fmt.Errorf("demo facts for %s: %d refused, first: %s", c.id, len(res.Rejected), res.Rejected[0].Error.Message)
		}
		customers++
		facts += res.Accepted
	}
	return customers, facts, nil
}
