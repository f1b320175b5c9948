package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// After `POST /customers/{id}/erase`, no table, export, API answer or log
// line written afterwards holds the customer's email, name, IP or device
// ids — also after Stripe sends the customer again — while amounts, states
// and every audit entry stay. Another customer is untouched. Both
// databases; the CLI erases the same way (TestCustomerEraseCommand).
func TestCustomerErasure(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			sqlitePath := dbtest.NewSQLitePath(t)
			env := map[string]string{"RECOURSE_SQLITE_PATH": sqlitePath, "RECOURSE_LOG_LEVEL": "debug"}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			admin, agent, analyst, sup := in.token("admin"), in.token("agent"), in.token("analyst"), in.token("supervisor")

			// Two customers through realistic signed events: the one to erase
			// loses a chargeback (a dispute case) and fails a renewal; the
			// other renews quietly.
			g := stripetest.New(77)
			start := time.Now().Add(-50 * 24 * time.Hour).UTC()
			victim := g.ChargebackLost(start)
			other := g.ActiveRenews(start, 1)
			var cust, otherCust map[string]any
			for _, e := range victim {
				if e.Type == "charge.dispute.updated" || e.Type == "charge.dispute.closed" {
					break // the dispute stays open: its evidence is being prepared
				}
				if e.Type == "customer.created" {
					cust = e.Object
				}
				in.post(e)
			}
			for _, e := range other {
				if e.Type == "customer.created" {
					otherCust = e.Object
				}
				in.post(e)
			}
			if cust == nil || otherCust == nil {
				t.Fatal("the stories have no customer.created")
			}
			in.drained(admin)
			id, email, name := cust["id"].(string), cust["email"].(string), cust["name"].(string)
			otherEmail := otherCust["email"].(string)
			const ip, device, fingerprint, agentUA = "198.51.100.77", "dev-7f3a9c21-erase", "fp-93be71d0aa", "ErasureTestBrowser/9.1"

			// What the merchant's product and the desk add about them.
			facts := map[string]any{"facts": []map[string]any{
				{"id": "login-1", "kind": "login", "occurred_at": start.Add(time.Hour).Format(time.RFC3339), "ip": ip, "device_id": device,
					"device_fingerprint": fingerprint, "user_agent": agentUA, "data": map[string]any{"email": email, "note": "signed in as " + name}},
				{"id": "usage-1", "kind": "usage", "occurred_at": start.Add(2 * time.Hour).Format(time.RFC3339), "ip": ip, "device_id": device},
			}}
			if code, m := in.do("POST", "/api/v1/customers/"+id+"/facts", analyst, jsonBody(facts), nil); code != 200 || m["accepted"] != float64(2) {
				t.Fatalf("facts: %d %v", code, m)
			}
			cs := in.casesOf(agent, id)
			if len(cs) == 0 {
				t.Fatal("the customer has no case")
			}
			code, manual := in.do("POST", "/api/v1/cases", agent, jsonBody(map[string]any{"kind": "refund_request", "channel": "email",
				"title": "Refund for " + name, "description": name + " <" + email + "> wrote from " + ip + " on device " + device,
				"links": map[string]any{"customer": id}}), nil)
			if code != 201 {
				t.Fatalf("manual case: %d %v", code, manual)
			}
			for _, c := range append(cs, manual) {
				if code, m := in.do("POST", "/api/v1/cases/"+c["id"].(string)+"/notes", agent, jsonBody(map[string]any{"body": "Called " + name + " at " + email + "; IP " + ip}), nil); code != 201 {
					t.Fatalf("note: %d %v", code, m)
				}
			}
			if code, m := in.do("POST", "/api/v1/cases/"+manual["id"].(string)+"/escalate", agent, jsonBody(map[string]any{"team": "finance", "reason": "customer " + email + " insists"}), nil); code != 200 {
				t.Fatalf("escalate: %d %v", code, m)
			}
			// The analyst assembles the dispute's evidence from the facts.
			assembled := 0
			for _, c := range cs {
				if c["kind"] == "dispute" {
					if code, m := in.do("POST", "/api/v1/cases/"+c["id"].(string)+"/evidence/assemble", analyst, nil, nil); code != 200 {
						t.Fatalf("assemble: %d %v", code, m)
					}
					_, _, body := in.raw("/api/v1/cases/"+c["id"].(string)+"/evidence", analyst, nil)
					if !strings.Contains(body, ip) && !strings.Contains(body, email) {
						t.Fatalf("the assembled evidence names neither the IP nor the email: %s", body)
					}
					assembled++
				}
			}
			if assembled == 0 {
				t.Fatal("no dispute case")
			}
			before := in.casesOf(agent, id)
			auditBefore := in.auditTrail(sup)

			// Only admins erase, and only with a reason.
			if code, _ := in.do("POST", "/api/v1/customers/"+id+"/erase", sup, jsonBody(map[string]any{"reason": "DSR-1"}), nil); code != 403 {
				t.Fatalf("a supervisor erased: %d", code)
			}
			if code, _ := in.do("POST", "/api/v1/customers/"+id+"/erase", admin, jsonBody(map[string]any{"reason": ""}), nil); code != 400 {
				t.Fatalf("an erasure without a reason: %d", code)
			}
			// An open dispute holds the erasure back, unless forced.
			if code, m := in.do("POST", "/api/v1/customers/"+id+"/erase", admin, jsonBody(map[string]any{"reason": "DSR-2026-0042"}), nil); code != 409 || m["error"].(map[string]any)["code"] != "open_dispute" {
				t.Fatalf("erasure with an open dispute: %d %v", code, m)
			}
			if code, c := in.do("GET", "/api/v1/customers/"+id, admin, nil, nil); code != 200 || c["erased_at"] != nil {
				t.Fatalf("before the erasure: %d erased_at %v", code, c["erased_at"])
			}
			logsBefore := len(in.logs())
			code, rep := in.do("POST", "/api/v1/customers/"+id+"/erase", admin, jsonBody(map[string]any{"reason": "DSR-2026-0042 (verified by email)", "force": true}), nil)
			if code != 200 || rep["customer_id"] != id || rep["already_erased"] != false {
				t.Fatalf("erase: %d %v", code, rep)
			}
			t.Logf("erasure report: %v", rep)
			if code, c := in.do("GET", "/api/v1/customers/"+id, admin, nil, nil); code != 200 || c["erased_at"] != rep["erased_at"] {
				t.Fatalf("after the erasure: %d erased_at %v, want %v", code, c["erased_at"], rep["erased_at"])
			}
			if _, _, body := in.raw("/api/v1/customers/"+id, admin, nil); strings.Contains(body, email) || strings.Contains(body, name) {
				t.Errorf("the mirror still holds the customer right after the erasure: %s", body)
			}

			// Stripe keeps sending the customer: nothing comes back.
			cust["phone"] = "+1 415 555 0199"
			upd := g.NewEvent("customer.updated", cust)
			in.post(upd)
			in.drained(admin)
			if code, m := in.do("POST", "/api/v1/customers/"+id+"/facts", analyst, jsonBody(facts), nil); code != 409 {
				t.Fatalf("facts about an erased customer: %d %v", code, m)
			}

			secrets := []string{email, name, ip, device, fingerprint, agentUA, "+1 415 555 0199"}
			find := func(where, text string) {
				t.Helper()
				low := strings.ToLower(text)
				for _, s := range secrets {
					if strings.Contains(low, strings.ToLower(s)) {
						t.Errorf("%s holds %q", where, s)
					}
				}
			}
			// The API, the exports.
			for _, path := range []string{"/api/v1/customers/" + id, "/api/v1/customers/" + id + "/timeline", "/api/v1/customers?q=" + url.QueryEscape(email),
				"/api/v1/customers/" + id + "/facts", "/api/v1/cases?format=csv", "/api/v1/audit?format=csv", "/api/v1/audit?format=jsonl",
				"/api/v1/webhook-events?format=csv", "/api/v1/events", "/api/v1/cases?customer=" + id,
				"/api/v1/reports/volume?group_by=assignee&format=csv", "/api/v1/reports/team?format=jsonl", "/api/v1/reports/root_causes?format=csv",
				"/api/v1/reports/disputes?format=csv"} {
				code, _, body := in.raw(path, admin, nil)
				if code != 200 {
					t.Errorf("GET %s: %d", path, code)
				}
				find("GET "+path, body)
			}
			for _, c := range before {
				cid := c["id"].(string)
				for _, path := range []string{"/api/v1/cases/" + cid, "/api/v1/cases/" + cid + "/timeline", "/api/v1/cases/" + cid + "/evidence"} {
					_, _, body := in.raw(path, admin, nil)
					find("GET "+path, body)
				}
			}
			// Amounts and states are intact.
			after := in.casesOf(agent, id)
			if len(after) != len(before) {
				t.Fatalf("%d cases after, %d before", len(after), len(before))
			}
			for i := range before {
				for _, k := range []string{"id", "kind", "state", "status", "amount", "currency", "resolution", "priority"} {
					if fmt.Sprint(before[i][k]) != fmt.Sprint(after[i][k]) {
						t.Errorf("case %v: %s was %v, is %v", before[i]["id"], k, before[i][k], after[i][k])
					}
				}
				// A person's title is erased; Recourse's own, which names no
				// one, stays.
				if want := before[i]["title"]; after[i]["channel"] != "stripe" && after[i]["title"] != "[erased]" || after[i]["channel"] == "stripe" && after[i]["title"] != want {
					t.Errorf("case %v (%v): title %v, was %v", after[i]["id"], after[i]["channel"], after[i]["title"], want)
				}
			}
			// Every audit entry is still there, in order, with who, what and
			// when; one more says the customer was erased.
			auditAfter := in.auditTrail(sup)
			if len(auditAfter) < len(auditBefore)+1 {
				t.Fatalf("audit entries: %d before, %d after", len(auditBefore), len(auditAfter))
			}
			for i, e := range auditBefore {
				if auditAfter[i] != e {
					t.Errorf("audit entry %d changed: %q → %q", i, e, auditAfter[i])
				}
			}
			if !strings.Contains(strings.Join(auditAfter[len(auditBefore):], "\n"), "customer.erase") {
				t.Errorf("no customer.erase entry: %v", auditAfter[len(auditBefore):])
			}
			// The other customer is untouched.
			if code, m := in.do("GET", "/api/v1/customers?q="+url.QueryEscape(otherEmail), agent, nil, nil); code != 200 || len(m["data"].([]any)) != 1 {
				t.Errorf("the other customer: %d %v", code, m)
			}
			find("log lines after the erasure", in.logs()[logsBefore:])

			// Every text column of every table, and the raw payloads.
			if err := in.stop(); err != nil {
				t.Fatal(err)
			}
			d, err := db.Open(context.Background(), env["DATABASE_URL"], sqlitePath, db.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			values := 0
			for table, cols := range textColumns(context.Background(), t, d) {
				for _, col := range cols {
					var vals []string
					q := fmt.Sprintf(`SELECT COALESCE(CAST(%q AS TEXT), '') FROM %q`, col, table)
					if err := d.WithContext(context.Background()).Raw(q).Scan(&vals).Error; err != nil {
						t.Fatalf("scan %s.%s: %v", table, col, err)
					}
					for _, v := range vals {
						values++
						find(table+"."+col, v)
					}
				}
			}
			var packets int64
			if err := d.WithContext(context.Background()).Raw(`SELECT count(*) FROM dispute_evidence_drafts WHERE packet IS NOT NULL`).Scan(&packets).Error; err != nil || packets != 0 {
				t.Errorf("%d evidence packets kept (%v)", packets, err)
			}
			var payloads [][]byte
			if err := d.WithContext(context.Background()).Raw(`SELECT payload FROM webhook_events`).Scan(&payloads).Error; err != nil {
				t.Fatal(err)
			}
			kept := 0
			for i, p := range payloads {
				find(fmt.Sprintf("webhook_events.payload %d", i), string(p))
				if strings.Contains(string(p), otherEmail) {
					kept++
				}
			}
			if kept == 0 {
				t.Error("the other customer's payloads were erased too")
			}
			t.Logf("%s: scanned %d values and %d payloads", dialect, values, len(payloads))
		})
	}
}

// casesOf lists the customer's cases, oldest first.
func (in *instance) casesOf(token, customer string) []map[string]any {
	in.t.Helper()
	code, m := in.do("GET", "/api/v1/cases?limit=100&customer="+url.QueryEscape(customer), token, nil, nil)
	if code != 200 {
		in.t.Fatalf("cases of %s: %d %v", customer, code, m)
	}
	var out []map[string]any
	for _, c := range m["data"].([]any) {
		out = append(out, c.(map[string]any))
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["id"].(string) < out[j]["id"].(string) })
	return out
}

// auditTrail is every audit entry's id, time, actor and action, oldest first.
func (in *instance) auditTrail(token string) []string {
	in.t.Helper()
	var out []string
	path := "/api/v1/audit?limit=200"
	for {
		code, m := in.do("GET", path, token, nil, nil)
		if code != 200 {
			in.t.Fatalf("audit: %d %v", code, m)
		}
		for _, e := range m["data"].([]any) {
			e := e.(map[string]any)
			out = append(out, fmt.Sprintf("%v %v %v %v %v %v", e["id"], e["at"], e["actor"], e["action"], e["case_id"], e["object_id"]))
		}
		next, _ := m["next_cursor"].(string)
		if next == "" {
			break
		}
		path = "/api/v1/audit?limit=200&cursor=" + url.QueryEscape(next)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// recourse customer erase needs a reason, erases (here a customer the
// mirror never saw: the mark alone keeps their events from adding personal
// data later), says when it had been done before, and is audited as the
// CLI's user.
func TestCustomerEraseCommand(t *testing.T) {
	t.Parallel()
	env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t), "USER": "dpo"}
	getenv := func(k string) string { return env[k] }
	ctx := context.Background()
	if err := run(ctx, []string{"customer", "erase", "cus_cli1"}, getenv, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "reason") {
		t.Fatalf("without a reason: %v", err)
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"customer", "erase", "cus_cli1", "--reason", "DSR-7"}, getenv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "erased customer cus_cli1") {
		t.Fatalf("output: %q", out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"customer", "erase", "cus_cli1", "--reason", "DSR-7", "--json"}, getenv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"already_erased": true`) {
		t.Fatalf("second erasure: %q", out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"export", "audit", "--action", "customer.erase", "--format", "jsonl"}, getenv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), `"cli:`); n != 2 {
		t.Fatalf("%d customer.erase entries by the CLI: %s", n, out.String())
	}
}
