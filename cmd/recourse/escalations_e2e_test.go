package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/escalations"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stdwebhooks"
)

const (
	inappKey      = "in-app escalation signing key"
	zendeskSecret = "dGhpcyBpcyBhIHplbmRlc2sgc2VjcmV0"
)

// escalate posts body to source signed by sign; it returns the status and
// the decoded answer.
func (in *instance) escalate(source string, body []byte, sign func(http.Header, []byte)) (int, map[string]any) {
	in.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, in.url+"/webhooks/escalations/"+source, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if sign != nil {
		sign(req.Header, body)
	}
	resp, err := in.api.Do(req)
	if err != nil {
		in.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func stdSigned(at time.Time, id string) func(http.Header, []byte) {
	return func(h http.Header, body []byte) { stdwebhooks.SetHeaders(h, []byte(inappKey), id, at, body) }
}

func zendeskSigned(at time.Time, secret string) func(http.Header, []byte) {
	return func(h http.Header, body []byte) {
		ts := at.UTC().Format(time.RFC3339)
		h.Set("X-Zendesk-Webhook-Signature-Timestamp", ts)
		h.Set("X-Zendesk-Webhook-Signature", escalations.ZendeskSign([]byte(secret), ts, body))
	}
}

// Tickets from an in-app escalation tool (Standard Webhooks) and from
// Zendesk (its own signature) open one case each, deduplicated by the
// source's ticket id across redeliveries and a concurrent storm; an update
// lands on the case's timeline once; bad signatures, stale timestamps,
// malformed or oversized bodies and unknown sources are refused and make
// nothing.
func TestInboundEscalations(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t),
				"RECOURSE_ESCALATION_SOURCES": "inapp:generic:whsec_" + base64.StdEncoding.EncodeToString([]byte(inappKey)) + ",zd:zendesk:" + zendeskSecret,
				"RECOURSE_WEBHOOK_MAX_BODY":   "65536"}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			agent := in.token("agent")
			now := time.Now()
			ticket := []byte(`{"id":"T-100","subject":"Charged twice for LIVE gifts","description":"User says two charges on 1 Dec.","email":"mia@example.com","customer":"cus_mia","priority":"high","channel":"chat","business_line":"live","url":"https://escalations.example.com/t/T-100"}`)

			code, out := in.escalate("inapp", ticket, stdSigned(now, "msg_1"))
			if code != 201 || out["created"] != true {
				t.Fatalf("first delivery: %d %v", code, out)
			}
			caseID := out["case_id"].(string)
			code, cs := in.do("GET", "/api/v1/cases/"+caseID, agent, nil, nil)
			if code != 200 || cs["title"] != "Charged twice for LIVE gifts" || cs["priority"] != "high" || cs["business_line"] != "live" || cs["channel"] != "chat" {
				t.Fatalf("case: %d %v", code, cs)
			}
			if links := cs["links"].(map[string]any); links["customer"] != "cus_mia" {
				t.Fatalf("customer link: %v", links)
			}
			ext := cs["external_tickets"].([]any)
			if len(ext) != 1 || ext[0].(map[string]any)["system"] != "inapp" || ext[0].(map[string]any)["ticket_id"] != "T-100" ||
				ext[0].(map[string]any)["url"] != "https://escalations.example.com/t/T-100" {
				t.Fatalf("external tickets: %v", ext)
			}
			entries := func() int { return len(in.timelineOf(agent, caseID)) }
			before := entries()

			// A redelivery (same body, even with a new message id) changes nothing.
			code, out = in.escalate("inapp", ticket, stdSigned(now, "msg_2"))
			if code != 200 || out["created"] != false || out["updated"] != false || out["case_id"] != caseID {
				t.Fatalf("redelivery: %d %v", code, out)
			}
			if n := entries(); n != before {
				t.Fatalf("a redelivery added %d timeline entries", n-before)
			}
			// An update is recorded once.
			update := bytes.Replace(ticket, []byte("User says two charges on 1 Dec."), []byte("User sent a bank statement."), 1)
			for i := 0; i < 2; i++ {
				code, out = in.escalate("inapp", update, stdSigned(now, fmt.Sprintf("msg_u%d", i)))
				if code != 200 || out["updated"] != (i == 0) {
					t.Fatalf("update %d: %d %v", i, code, out)
				}
			}
			tl := in.timelineOf(agent, caseID)
			if len(tl) != before+1 || !strings.Contains(fmt.Sprint(tl[len(tl)-1]), "bank statement") {
				t.Fatalf("timeline after update: %d entries (want %d), last %v", len(tl), before+1, tl[len(tl)-1])
			}
			// Searchable by the ticket id.
			if code, link := in.do("GET", "/api/v1/external-tickets/inapp/T-100", agent, nil, nil); code != 200 || link["case_id"] != caseID {
				t.Fatalf("find by ticket: %d %v", code, link)
			}

			// A storm: 20 concurrent first deliveries of a new ticket make one case.
			storm := []byte(`{"id":"T-200","subject":"Renewal failed twice"}`)
			var wg sync.WaitGroup
			ids := make(chan string, 20)
			for i := 0; i < 20; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					code, out := in.escalate("inapp", storm, stdSigned(now, fmt.Sprintf("msg_s%d", i)))
					if code != 201 && code != 200 {
						t.Errorf("storm delivery %d: %d %v", i, code, out)
						return
					}
					ids <- out["case_id"].(string)
				}(i)
			}
			wg.Wait()
			close(ids)
			distinct := map[string]bool{}
			for id := range ids {
				distinct[id] = true
			}
			if len(distinct) != 1 {
				t.Fatalf("20 concurrent deliveries made %d cases: %v", len(distinct), distinct)
			}
			code, list := in.do("GET", "/api/v1/cases?limit=200", agent, nil, nil)
			titles := 0
			for _, c := range list["data"].([]any) {
				if c.(map[string]any)["title"] == "Renewal failed twice" {
					titles++
				}
			}
			if code != 200 || titles != 1 {
				t.Fatalf("cases titled like the storm ticket: %d (%d)", titles, code)
			}

			// A ticket with only an email is linked to the one mirrored customer with it.
			cust := postFailedRenewal(t, in)
			byEmail := []byte(fmt.Sprintf(`{"id":"T-300","subject":"Why did my renewal fail?","email":%q}`, strings.ToUpper(cust["email"].(string))))
			code, out = in.escalate("inapp", byEmail, stdSigned(now, "msg_e"))
			if code != 201 {
				t.Fatalf("by email: %d %v", code, out)
			}
			if _, cs := in.do("GET", "/api/v1/cases/"+out["case_id"].(string), agent, nil, nil); cs["links"].(map[string]any)["customer"] != cust["id"] {
				t.Fatalf("a ticket from %s is not linked to %s: %v", cust["email"], cust["id"], cs["links"])
			}
			code, out = in.escalate("inapp", []byte(`{"id":"T-301","subject":"Who am I?","email":"nobody@example.com"}`), stdSigned(now, "msg_n"))
			if _, cs := in.do("GET", "/api/v1/cases/"+out["case_id"].(string), agent, nil, nil); code != 201 || cs["links"].(map[string]any)["customer"] != nil {
				t.Fatalf("an unknown email: %d, links %v", code, cs["links"])
			}

			// Zendesk: a numeric id, its own signature scheme.
			zd := []byte(`{"id":4711,"subject":"Refund not received","description":"Requester asks where the refund is.","url":"https://acme.zendesk.com/agent/tickets/4711"}`)
			code, out = in.escalate("zd", zd, zendeskSigned(now, zendeskSecret))
			if code != 201 {
				t.Fatalf("zendesk: %d %v", code, out)
			}
			zdCase := out["case_id"].(string)
			if code, cs := in.do("GET", "/api/v1/cases/"+zdCase, agent, nil, nil); code != 200 || cs["channel"] != "email" ||
				cs["external_tickets"].([]any)[0].(map[string]any)["ticket_id"] != "4711" {
				t.Fatalf("zendesk case: %d %v", code, cs)
			}

			// Refusals make nothing.
			fresh := []byte(`{"id":"T-999","subject":"Should never exist"}`)
			for _, tc := range []struct {
				name, source string
				body         []byte
				sign         func(http.Header, []byte)
				status       int
				code         string
			}{
				{"unsigned", "inapp", fresh, nil, 401, "missing_signature"},
				{"wrong key", "inapp", fresh, func(h http.Header, b []byte) { stdwebhooks.SetHeaders(h, []byte("other"), "m", now, b) }, 401, "invalid_signature"},
				{"6 min old", "inapp", fresh, stdSigned(now.Add(-6*time.Minute), "m"), 401, "timestamp_out_of_tolerance"},
				{"6 min ahead", "inapp", fresh, stdSigned(now.Add(6*time.Minute), "m"), 401, "timestamp_out_of_tolerance"},
				{"zendesk wrong secret", "zd", fresh, zendeskSigned(now, "not the secret"), 401, "invalid_signature"},
				{"zendesk 6 min old", "zd", fresh, zendeskSigned(now.Add(-6*time.Minute), zendeskSecret), 401, "timestamp_out_of_tolerance"},
				{"zendesk signed with the generic scheme", "zd", fresh, stdSigned(now, "m"), 401, "missing_signature"},
				{"malformed JSON", "inapp", []byte(`{"id":"T-999",`), stdSigned(now, "m"), 400, "malformed_json"},
				{"no subject", "inapp", []byte(`{"id":"T-999"}`), stdSigned(now, "m"), 400, "invalid_ticket"},
				{"bad kind", "inapp", []byte(`{"id":"T-999","subject":"x","kind":"dispute"}`), stdSigned(now, "m"), 400, "invalid_kind"},
				{"too large", "inapp", []byte(`{"id":"T-999","subject":"x","description":"` + strings.Repeat("a", 70000) + `"}`), stdSigned(now, "m"), 413, "payload_too_large"},
				{"unknown source", "jira", fresh, stdSigned(now, "m"), 404, "unknown_source"},
			} {
				code, out := in.escalate(tc.source, tc.body, tc.sign)
				if code != tc.status || errCode(out) != tc.code {
					t.Errorf("%s: %d %v, want %d %s", tc.name, code, out, tc.status, tc.code)
				}
			}
			if code, _ := in.do("GET", "/api/v1/external-tickets/inapp/T-999", agent, nil, nil); code != 404 {
				t.Fatalf("a refused delivery linked a ticket: %d", code)
			}

			// Agents link a ticket by hand; a ticket links to one case only.
			if code, out := in.do("POST", "/api/v1/cases/"+zdCase+"/external-tickets", agent, []byte(`{"system":"jira","ticket_id":"PAY-12","url":"https://acme.atlassian.net/browse/PAY-12"}`), nil); code != 201 || out["case_id"] != zdCase {
				t.Fatalf("link by hand: %d %v", code, out)
			}
			if code, out := in.do("POST", "/api/v1/cases/"+caseID+"/external-tickets", agent, []byte(`{"system":"jira","ticket_id":"PAY-12"}`), nil); code != 409 || errCode(out) != "external_ticket_exists" {
				t.Fatalf("the same ticket on a second case: %d %v", code, out)
			}
			if code, out := in.do("POST", "/api/v1/cases/"+caseID+"/external-tickets", agent, []byte(`{"system":"jira","ticket_id":"PAY 13","url":"javascript:alert(1)"}`), nil); code != 400 {
				t.Fatalf("a bad link: %d %v", code, out)
			}
		})
	}
}

// errCode is the API error's code in a decoded error answer.
func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}
