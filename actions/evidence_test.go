package actions_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/actions"
	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/stripemock"
)

// minimalPDF is a small, valid one-page PDF.
const minimalPDF = "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n" +
	"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"

// fakeEvidence is an in-memory workbench: one draft per case.
type fakeEvidence struct {
	mu     sync.Mutex
	drafts map[string]*disputes.Package
	limit  map[string]error // a limit error Package returns for the case
	sent   []string         // "case version submitted action files"
	// rendezvous, when set, holds each Package call up to 300ms for the
	// other one of two concurrent requests, so an unserialised check
	// would let both through.
	rendezvous chan struct{}
}

func newFakeEvidence() *fakeEvidence {
	return &fakeEvidence{drafts: map[string]*disputes.Package{}, limit: map[string]error{}}
}

func (f *fakeEvidence) Package(_ context.Context, _ *gorm.DB, caseID string) (disputes.Package, error) {
	if f.rendezvous != nil {
		select {
		case f.rendezvous <- struct{}{}:
		case <-f.rendezvous:
		case <-time.After(300 * time.Millisecond):
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.limit[caseID]; err != nil {
		return disputes.Package{}, err
	}
	p, ok := f.drafts[caseID]
	if !ok {
		return disputes.Package{}, errs.NotFound("case %s has no evidence draft", caseID)
	}
	out := *p
	out.Fields = map[string]string{}
	for k, v := range p.Fields {
		out.Fields[k] = v
	}
	out.Files = append([]disputes.File(nil), p.Files...)
	return out, nil
}

func (f *fakeEvidence) Sent(_ context.Context, _ *gorm.DB, caseID string, version int64, submitted bool, actionID string, fileIDs map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.drafts[caseID]
	if p.Version != version {
		return errs.Coded(errs.ECONFLICT, "version", "draft moved on")
	}
	p.Status = disputes.DraftStatusStaged
	if submitted {
		p.Status = disputes.DraftStatusSubmitted
	}
	f.sent = append(f.sent, fmt.Sprintf("%s %d %v %s %d", caseID, version, submitted, actionID, len(fileIDs)))
	return nil
}

func (f *fakeEvidence) draft(caseID, disputeID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drafts[caseID] = &disputes.Package{CaseID: caseID, DisputeID: disputeID, Brand: "visa", Version: 1, Status: disputes.DraftStatusDraft,
		Fields: map[string]string{"cancellation_rebuttal": "No cancellation request on record before the renewal.", "customer_email_address": "a@example.com"},
		Files: []disputes.File{
			{Field: "uncategorized_file", Name: "rebuttal.pdf", MIMEType: "application/pdf", Content: []byte(minimalPDF)},
			{Field: "cancellation_policy", Name: "policy.pdf", MIMEType: "application/pdf", Content: []byte(minimalPDF)},
		}}
}

func (f *fakeEvidence) edit(caseID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.drafts[caseID]
	p.Version++
	p.Fields["cancellation_rebuttal"] += " Edited."
}

// countingProvider wraps the real client: it records every call (and the
// idempotency key) and can fail uploads after they reached Stripe, as a
// lost answer would.
type countingProvider struct {
	billing.Provider
	mu          sync.Mutex
	calls       []string
	failUploads int
}

func (c *countingProvider) record(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, s)
}

func (c *countingProvider) log() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

func (c *countingProvider) count(prefix string) int {
	n := 0
	for _, s := range c.log() {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

func (c *countingProvider) UploadFile(ctx context.Context, f billing.FileUpload) (billing.Result, error) {
	c.record("upload " + f.Purpose + " " + f.IdempotencyKey)
	res, err := c.Provider.UploadFile(ctx, f)
	c.mu.Lock()
	fail := c.failUploads > 0
	if fail {
		c.failUploads--
	}
	c.mu.Unlock()
	if err == nil && fail {
		return billing.Result{}, &billing.ProviderError{Type: "connection_error", Message: "answer lost", Retryable: true}
	}
	return res, err
}

func (c *countingProvider) UpdateDisputeEvidence(ctx context.Context, id string, ev map[string]string, submit bool, k billing.Key) (billing.Result, error) {
	c.record(fmt.Sprintf("update %s submit=%v fields=%d %s", id, submit, len(ev), k.IdempotencyKey))
	return c.Provider.UpdateDisputeEvidence(ctx, id, ev, submit, k)
}

type evidenceHarness struct {
	*harness
	ev   *fakeEvidence
	prov *countingProvider
}

func newEvidenceHarness(t *testing.T, d *db.DB, base string, pol actions.Policy) *evidenceHarness {
	t.Helper()
	prov := &countingProvider{Provider: stripeClient(t, base)}
	ev := newFakeEvidence()
	return &evidenceHarness{harness: newHarnessFull(t, d, prov, nil, ev, pol), ev: ev, prov: prov}
}

// disputeCase seeds a dispute case in state with its dispute (status,
// due in dueIn) and, when draft, an evidence draft.
func (h *evidenceHarness) disputeCase(id, state, status string, dueIn time.Duration, draft bool) actions.CaseRef {
	c := h.seed(id, "dispute", 4900)
	c.State, c.Dispute = state, "dp_"+id
	h.cases.mu.Lock()
	h.cases.cases[id] = c
	h.cases.mu.Unlock()
	due := h.clock.Now().Add(dueIn)
	h.mirror.mu.Lock()
	h.mirror.disputes[c.Dispute] = billing.Dispute{ID: c.Dispute, ChargeID: c.Charge, Amount: 4900, Currency: "usd", Status: status,
		Reason: "subscription_canceled", EvidenceDueBy: &due}
	h.mirror.mu.Unlock()
	if draft {
		h.ev.draft(id, c.Dispute)
	}
	return c
}

func files(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	res, _ := body["result"].(map[string]any)
	raw, _ := res["Raw"].(map[string]any)
	f, _ := raw["files"].(map[string]any)
	return f
}

// afterMoves is the case state once the action's recorded moves fire
// through the real dispute lifecycle.
func afterMoves(t *testing.T, h *harness, caseID, state string) string {
	t.Helper()
	lc, _ := cases.LifecycleOf(cases.KindDispute)
	for _, e := range h.cases.entries(caseID) {
		parts := strings.Split(e, "|")
		if len(parts) < 3 || parts[1] != "move" {
			continue
		}
		next, err := lc.Fire(context.Background(), state, parts[2], false)
		if err != nil {
			continue // cannot fire here: changes nothing
		}
		state = next
	}
	return state
}

// Stage, then submit, against stripe-mock on both databases: files go up
// through the Files API first, then the dispute update; the draft is
// recorded as sent with the file ids; the case ends waiting for the issuer
// with its SLA clock paused; a second submission is refused before Stripe.
func TestEvidenceStageThenSubmit(t *testing.T) {
	m := stripemock.Start(t)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newEvidenceHarness(t, d, m.URL, actions.DefaultPolicy())
		h.disputeCase("d1", "needs_response", "needs_response", 7*24*time.Hour, true)

		r := h.act("d1", "analyst", "stage1", "stage_evidence", nil, "")
		if r.status != 201 || r.body["status"] != "succeeded" {
			t.Fatalf("stage: %d %v", r.status, r.body)
		}
		if f := files(t, r.body); len(f) != 2 || !strings.HasPrefix(fmt.Sprint(f["uncategorized_file"]), "file_") {
			t.Fatalf("stage result files: %v", r.body["result"])
		}
		calls := h.prov.log()
		if len(calls) != 3 || !strings.HasPrefix(calls[0], "upload dispute_evidence ") || !strings.HasPrefix(calls[1], "upload dispute_evidence ") ||
			!strings.HasPrefix(calls[2], "update dp_d1 submit=false fields=4 ") {
			t.Fatalf("provider calls: %q", calls)
		}
		for _, c := range calls[:2] {
			if !strings.Contains(c, "/file/") {
				t.Fatalf("upload key not derived from the action's: %q", c)
			}
		}
		if got := afterMoves(t, h.harness, "d1", "needs_response"); got != "preparing_evidence" {
			t.Fatalf("after staging the case is %s", got)
		}

		r = h.act("d1", "analyst", "submit1", "submit_evidence", nil, "ready")
		if r.status != 201 || r.body["status"] != "succeeded" {
			t.Fatalf("submit: %d %v", r.status, r.body)
		}
		if !strings.HasPrefix(h.prov.log()[5], "update dp_d1 submit=true fields=4 ") {
			t.Fatalf("provider calls: %q", h.prov.log())
		}
		if len(h.ev.sent) != 2 || !strings.Contains(h.ev.sent[0], " false ") || !strings.Contains(h.ev.sent[1], " true ") {
			t.Fatalf("sent: %q", h.ev.sent)
		}
		final := afterMoves(t, h.harness, "d1", "needs_response")
		lc, _ := cases.LifecycleOf(cases.KindDispute)
		if final != "under_review" || lc.RoleOf(final) != cases.SLAPaused {
			t.Fatalf("after submission the case is %s (SLA %v); want under_review with its clock paused", final, lc.RoleOf(final))
		}
		tl := strings.Join(h.cases.entries("d1"), "\n")
		if !strings.Contains(tl, "submission of evidence for dispute dp_d1") || !strings.Contains(tl, "staging of evidence for dispute dp_d1") {
			t.Fatalf("timeline: %s", tl)
		}

		// Second submission, staging after submission, and accepting the
		// dispute after submission: 409 before Stripe.
		before := len(h.prov.log())
		if r := h.act("d1", "analyst", "accept-after", "accept_dispute", nil, "changed our mind"); r.status != 409 || r.code() != "evidence_submitted" {
			t.Fatalf("accept after submission: %d %v", r.status, r.body)
		}
		for _, typ := range []string{"submit_evidence", "stage_evidence"} {
			if r := h.act("d1", "analyst", "again-"+typ, typ, nil, ""); r.status != 409 || r.code() != "evidence_already_submitted" {
				t.Fatalf("%s after submission: %d %v", typ, r.status, r.body)
			}
		}
		// Also when only Stripe knows (the draft was reset, the mirror has it).
		h.ev.mu.Lock()
		h.ev.drafts["d1"].Status = disputes.DraftStatusDraft
		h.ev.mu.Unlock()
		h.mirror.mu.Lock()
		dp := h.mirror.disputes["dp_d1"]
		dp.Status, dp.SubmissionCount = "under_review", 1
		h.mirror.disputes["dp_d1"] = dp
		h.mirror.mu.Unlock()
		if r := h.act("d1", "analyst", "again3", "submit_evidence", nil, ""); r.status != 409 || r.code() != "evidence_already_submitted" {
			t.Fatalf("submit after Stripe counted one: %d %v", r.status, r.body)
		}
		if len(h.prov.log()) != before {
			t.Fatalf("a refused submission reached the provider: %q", h.prov.log()[before:])
		}
		audit := strings.Join(h.auditActions("d1"), ",")
		if !strings.Contains(audit, "action.provider_call.submit_evidence") || !strings.Contains(audit, "action.refused.submit_evidence") {
			t.Fatalf("audit: %s", audit)
		}
	})
}

// An inquiry's response moves its case to warning_under_review.
func TestEvidenceInquiryResponse(t *testing.T) {
	m := stripemock.Start(t)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newEvidenceHarness(t, d, m.URL, actions.DefaultPolicy())
		h.disputeCase("i1", "warning_needs_response", "warning_needs_response", 7*24*time.Hour, true)
		if r := h.act("i1", "analyst", "k1", "submit_evidence", nil, ""); r.status != 201 {
			t.Fatalf("submit: %d %v", r.status, r.body)
		}
		if got := afterMoves(t, h.harness, "i1", "warning_needs_response"); got != "warning_under_review" {
			t.Fatalf("inquiry case is %s", got)
		}
	})
}

// Who may send evidence, and the refusals before Stripe is called.
func TestEvidenceRefusals(t *testing.T) {
	m := stripemock.Start(t)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newEvidenceHarness(t, d, m.URL, actions.DefaultPolicy())
		h.disputeCase("a1", "needs_response", "needs_response", 7*24*time.Hour, true)
		if r := h.act("a1", "agent", "k1", "submit_evidence", nil, ""); r.status != 403 {
			t.Fatalf("agent: %d %v", r.status, r.body)
		}
		if r := h.act("a1", "agent", "k1s", "stage_evidence", nil, ""); r.status != 403 {
			t.Fatalf("agent staging: %d %v", r.status, r.body)
		}
		h.disputeCase("n1", "needs_response", "needs_response", 7*24*time.Hour, false)
		if r := h.act("n1", "analyst", "k2", "submit_evidence", nil, ""); r.status != 409 || r.code() != "no_evidence_draft" {
			t.Fatalf("no draft: %d %v", r.status, r.body)
		}
		h.disputeCase("l1", "needs_response", "needs_response", 7*24*time.Hour, true)
		h.ev.limit["l1"] = errs.Coded(errs.EUNPROCESSABLE, "evidence_too_large", "all evidence together is 4.7 MB; Stripe takes at most 4.5 MB")
		if r := h.act("l1", "analyst", "k3", "submit_evidence", nil, ""); r.status != 422 || r.code() != "evidence_too_large" {
			t.Fatalf("limit: %d %v", r.status, r.body)
		}
		// Deadline: a second before due_by is in time; at due_by it is past.
		h.disputeCase("t1", "needs_response", "needs_response", time.Second, true)
		h.disputeCase("t2", "needs_response", "needs_response", 0, true)
		if r := h.act("t2", "analyst", "k4", "submit_evidence", nil, ""); r.status != 409 || r.code() != "deadline_passed" {
			t.Fatalf("at due_by: %d %v", r.status, r.body)
		}
		h.disputeCase("t3", "needs_response", "needs_response", time.Hour, true)
		h.mirror.mu.Lock()
		dp := h.mirror.disputes["dp_t3"]
		dp.PastDue = true
		h.mirror.disputes["dp_t3"] = dp
		h.mirror.mu.Unlock()
		if r := h.act("t3", "analyst", "k4b", "stage_evidence", nil, ""); r.status != 409 || r.code() != "deadline_passed" {
			t.Fatalf("past due at Stripe: %d %v", r.status, r.body)
		}
		if got := h.prov.log(); len(got) != 0 {
			t.Fatalf("refusals reached the provider: %q", got)
		}
		if r := h.act("t1", "analyst", "k5", "submit_evidence", nil, ""); r.status != 201 {
			t.Fatalf("just before due_by: %d %v", r.status, r.body)
		}
		// A dispute no longer needing a response, never submitted.
		h.disputeCase("w1", "needs_response", "won", 7*24*time.Hour, true)
		if r := h.act("w1", "analyst", "k6", "stage_evidence", nil, ""); r.status != 409 || r.code() != "dispute_not_open" {
			t.Fatalf("won dispute: %d %v", r.status, r.body)
		}
		// An unknown status may need a response: allowed.
		h.disputeCase("u1", "needs_response", "needs_more_info", 7*24*time.Hour, true)
		if r := h.act("u1", "analyst", "k7", "stage_evidence", nil, ""); r.status != 201 {
			t.Fatalf("unknown status: %d %v", r.status, r.body)
		}
		// An accepted dispute takes no evidence.
		h.disputeCase("x1", "needs_response", "needs_response", 7*24*time.Hour, true)
		if r := h.act("x1", "analyst", "kx", "accept_dispute", nil, "not worth fighting"); r.status != 201 {
			t.Fatalf("accept: %d %v", r.status, r.body)
		}
		if r := h.act("x1", "analyst", "kx2", "stage_evidence", nil, ""); r.status != 409 || r.code() != "dispute_accepted" {
			t.Fatalf("stage after accept: %d %v", r.status, r.body)
		}
		// A pinned version that is not the current one.
		h.disputeCase("v1", "needs_response", "needs_response", 7*24*time.Hour, true)
		if r := h.act("v1", "analyst", "k8", "stage_evidence", map[string]any{"evidence_version": 7}, ""); r.status != 409 || r.code() != "evidence_changed" {
			t.Fatalf("stale pinned version: %d %v", r.status, r.body)
		}
		// Replaying the request with its Idempotency-Key returns the same action.
		r1 := h.act("v1", "analyst", "k9", "stage_evidence", nil, "")
		r2 := h.act("v1", "analyst", "k9", "stage_evidence", nil, "")
		if r1.status != 201 || r2.body["id"] != r1.body["id"] || r2.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay: %d %v / %v", r1.status, r1.body["id"], r2.body)
		}
		if n := h.prov.count("update dp_v1"); n != 1 {
			t.Fatalf("replayed request reached the provider %d times", n)
		}
	})
}

// Without a workbench, evidence cannot be sent: 503.
func TestEvidenceUnavailable(t *testing.T) {
	m := stripemock.Start(t)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, stripeClient(t, m.URL))
		c := h.seed("d1", "dispute", 4900)
		c.Dispute = "dp_d1"
		h.cases.cases["d1"] = c
		if r := h.act("d1", "analyst", "k1", "submit_evidence", nil, ""); r.status != 503 || r.code() != "evidence_unavailable" {
			t.Fatalf("no workbench: %d %v", r.status, r.body)
		}
	})
}

// Two submissions at once: exactly one reaches Stripe.
func TestEvidenceConcurrentSubmissions(t *testing.T) {
	m := stripemock.Start(t)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newEvidenceHarness(t, d, m.URL, actions.DefaultPolicy())
		h.disputeCase("d1", "needs_response", "needs_response", 7*24*time.Hour, true)
		h.ev.rendezvous = make(chan struct{})
		var wg sync.WaitGroup
		out := make([]resp, 2)
		for i := range out {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				out[i] = h.act("d1", "analyst", fmt.Sprintf("c%d", i), "submit_evidence", nil, "")
			}(i)
		}
		wg.Wait()
		codes := []int{out[0].status, out[1].status}
		if !((codes[0] == 201 && codes[1] == 409) || (codes[0] == 409 && codes[1] == 201)) {
			t.Fatalf("statuses %v: %v / %v", codes, out[0].body, out[1].body)
		}
		if n := h.prov.count("update dp_d1 submit=true"); n != 1 {
			t.Fatalf("%d submissions reached the provider: %q", n, h.prov.log())
		}
		h.ev.rendezvous = nil
	})
}

// Evidence edited while the submission waited for approval: the approval
// ends it refused (evidence_changed) and nothing is sent.
func TestEvidenceChangedBeforeApproval(t *testing.T) {
	m := stripemock.Start(t)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		pol := actions.DefaultPolicy()
		pol.Evidence.SubmitRequiresApproval = true
		h := newEvidenceHarness(t, d, m.URL, pol)
		h.disputeCase("d1", "preparing_evidence", "needs_response", 7*24*time.Hour, true)
		r := h.act("d1", "analyst", "k1", "submit_evidence", nil, "")
		if r.status != 202 || r.body["status"] != "pending_approval" {
			t.Fatalf("request: %d %v", r.status, r.body)
		}
		id := r.body["id"].(string)
		// A second request while the first waits is refused.
		if r := h.act("d1", "analyst", "k2", "submit_evidence", nil, ""); r.status != 409 || r.code() != "evidence_already_submitted" {
			t.Fatalf("second while pending: %d %v", r.status, r.body)
		}
		h.ev.edit("d1")
		r = h.call("POST", "/api/v1/actions/"+id+"/approve", "sup1", "", map[string]any{"reason": "looks right"})
		if r.status != 409 || r.code() != "evidence_changed" {
			t.Fatalf("approve after edit: %d %v", r.status, r.body)
		}
		a, err := h.svc.Get(context.Background(), id)
		if err != nil || a.Status != actions.StatusRefused {
			t.Fatalf("action: %v %v", a.Status, err)
		}
		if got := h.prov.log(); len(got) != 0 {
			t.Fatalf("changed evidence reached the provider: %q", got)
		}
		// Requested again on the new version, approved: sent.
		r = h.act("d1", "analyst", "k3", "submit_evidence", nil, "")
		if r.status != 202 {
			t.Fatalf("re-request: %d %v", r.status, r.body)
		}
		r = h.call("POST", "/api/v1/actions/"+r.body["id"].(string)+"/approve", "sup1", "", map[string]any{"reason": "ok"})
		if r.status != 200 || r.body["status"] != "succeeded" {
			t.Fatalf("approve: %d %v", r.status, r.body)
		}
	})
}

// An upload whose answer was lost keeps the action executing; the resumer
// completes it with the same keys: one upload key per field.
func TestEvidenceUploadRetried(t *testing.T) {
	m := stripemock.Start(t)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newEvidenceHarness(t, d, m.URL, actions.DefaultPolicy())
		h.disputeCase("d1", "needs_response", "needs_response", 7*24*time.Hour, true)
		h.prov.failUploads = 1
		r := h.act("d1", "analyst", "k1", "submit_evidence", nil, "")
		if r.status != 503 {
			t.Fatalf("lost upload answer: %d %v", r.status, r.body)
		}
		if n := h.prov.count("update"); n != 0 {
			t.Fatalf("dispute updated after a failed upload: %q", h.prov.log())
		}
		h.clock.Advance(2 * time.Minute)
		if _, err := h.svc.ResumeStuck(context.Background()); err != nil {
			t.Fatal(err)
		}
		list, err := h.svc.ForCase(context.Background(), "d1")
		if err != nil || len(list) != 1 || list[0].Status != actions.StatusSucceeded {
			t.Fatalf("after resume: %v %+v", err, list)
		}
		keys := map[string]int{}
		for _, c := range h.prov.log() {
			if strings.HasPrefix(c, "upload ") {
				keys[strings.Fields(c)[2]]++
			}
		}
		if len(keys) != 2 {
			t.Fatalf("upload keys: %v (want one per field)", keys)
		}
		for k, n := range keys {
			if !strings.HasPrefix(k, list[0].ProviderKey+"/file/") {
				t.Fatalf("key %s not derived from %s", k, list[0].ProviderKey)
			}
			if strings.HasSuffix(k, "/cancellation_policy") && n != 2 {
				t.Fatalf("the failed upload was not retried with its key: %v", keys)
			}
		}
		if n := h.prov.count("update dp_d1 submit=true"); n != 1 {
			t.Fatalf("updates: %q", h.prov.log())
		}
	})
}

// The package changed after an attempt whose answer was lost: the action
// cannot send the old package again and does not claim nothing was sent.
func TestEvidenceChangedAfterLostAttempt(t *testing.T) {
	m := stripemock.Start(t)
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newEvidenceHarness(t, d, m.URL, actions.DefaultPolicy())
		h.disputeCase("d1", "needs_response", "needs_response", 7*24*time.Hour, true)
		h.prov.failUploads = 1
		if r := h.act("d1", "analyst", "k1", "submit_evidence", nil, ""); r.status != 503 {
			t.Fatalf("lost upload answer: %d %v", r.status, r.body)
		}
		h.ev.edit("d1")
		h.clock.Advance(2 * time.Minute)
		if _, err := h.svc.ResumeStuck(context.Background()); err != nil {
			t.Fatal(err)
		}
		list, err := h.svc.ForCase(context.Background(), "d1")
		if err != nil || len(list) != 1 || list[0].Status != actions.StatusFailed || list[0].Error == nil || list[0].Error.Code != "evidence_changed_in_doubt" {
			t.Fatalf("after resume: %v %+v", err, list)
		}
		if n := h.prov.count("update"); n != 0 {
			t.Fatalf("changed evidence was sent: %q", h.prov.log())
		}
		// Whoever watches for failed actions must hear of it: Stripe may
		// hold the earlier package.
		h.cases.mu.Lock()
		got := slices.Clone(h.cases.announced)
		h.cases.mu.Unlock()
		if want := []string{"action.failed action-failed/" + list[0].ID}; !slices.Equal(got, want) {
			t.Fatalf("announced %v, want %v", got, want)
		}
	})
}
