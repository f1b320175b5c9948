package stripe

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/stripemock"
)

func key(id string) billing.Key {
	return billing.Key{IdempotencyKey: "act_" + id, ActionID: id, CaseID: "case_1"}
}

// Every call against the real stripe-mock: it validates our requests against
// Stripe's OpenAPI spec for v76's API version and answers with fixtures.
func TestAgainstStripeMock(t *testing.T) {
	m := stripemock.Start(t)
	c, err := New(Config{APIKey: "sk_test_123", APIBase: m.URL, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	resumes := time.Now().Add(72 * time.Hour)
	calls := []struct {
		name   string
		call   func() (billing.Result, error)
		prefix string
	}{
		{"refund", func() (billing.Result, error) {
			return c.Refund(ctx, billing.RefundRequest{Key: key("a1"), ChargeID: "ch_1", Amount: 500, Reason: "requested_by_customer", Note: "duplicate purchase"})
		}, "re_"},
		{"refund by payment intent", func() (billing.Result, error) {
			return c.Refund(ctx, billing.RefundRequest{Key: key("a2"), PaymentIntentID: "pi_1"})
		}, "re_"},
		{"cancel now", func() (billing.Result, error) {
			return c.CancelSubscription(ctx, billing.CancelRequest{Key: key("a3"), SubscriptionID: "sub_1", Prorate: true, Feedback: "too_expensive", Comment: "moving to annual elsewhere"})
		}, "sub_"},
		{"cancel at period end", func() (billing.Result, error) {
			return c.CancelSubscription(ctx, billing.CancelRequest{Key: key("a4"), SubscriptionID: "sub_1", AtPeriodEnd: true, Feedback: "unused"})
		}, "sub_"},
		{"reactivate", func() (billing.Result, error) { return c.SetCancelAtPeriodEnd(ctx, "sub_1", false, key("a5")) }, "sub_"},
		{"extend trial", func() (billing.Result, error) {
			return c.ExtendTrial(ctx, "sub_1", time.Now().Add(10*24*time.Hour), key("a6"))
		}, "sub_"},
		{"pause", func() (billing.Result, error) {
			return c.PauseCollection(ctx, "sub_1", "keep_as_draft", &resumes, key("a7"))
		}, "sub_"},
		{"resume", func() (billing.Result, error) { return c.ResumeCollection(ctx, "sub_1", key("a8")) }, "sub_"},
		{"pay invoice", func() (billing.Result, error) { return c.PayInvoice(ctx, "in_1", key("a9")) }, "in_"},
		{"credit", func() (billing.Result, error) {
			return c.CreditBalance(ctx, billing.CreditRequest{Key: key("a10"), CustomerID: "cus_1", Amount: 1000, Currency: "USD", Description: "goodwill"})
		}, "cbtxn_"},
		{"stage evidence", func() (billing.Result, error) {
			return c.UpdateDisputeEvidence(ctx, "dp_1", map[string]string{"customer_email_address": "a@example.com", "uncategorized_text": "letter"}, false, key("a11"))
		}, "dp_"},
		{"submit evidence", func() (billing.Result, error) {
			return c.UpdateDisputeEvidence(ctx, "dp_1", map[string]string{"cancellation_rebuttal": "no request on record"}, true, key("a12"))
		}, "dp_"},
		{"accept dispute", func() (billing.Result, error) { return c.CloseDispute(ctx, "dp_1", key("a13")) }, "dp_"},
	}
	for _, tc := range calls {
		res, err := tc.call()
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !strings.HasPrefix(res.ObjectID, tc.prefix) {
			t.Errorf("%s: object id %q, want prefix %s", tc.name, res.ObjectID, tc.prefix)
		}
	}
	// stripe-mock validates parameters: a bad one comes back as a clear refusal.
	_, err = c.PauseCollection(ctx, "sub_1", "not_a_behavior", nil, key("a14"))
	var pe *billing.ProviderError
	if !errors.As(err, &pe) || pe.Type != "invalid_request_error" {
		t.Fatalf("invalid parameter: %v", err)
	}
	if coded := billing.AsCoded(err); errs.KindOf(coded) != errs.EUNPROCESSABLE {
		t.Fatalf("invalid request maps to %v", errs.KindOf(coded))
	}
}

type recorded struct {
	method, path, idemKey, auth string
	form                        url.Values
}

type recorder struct {
	mu    sync.Mutex
	reqs  []recorded
	reply func(n int, w http.ResponseWriter, r *http.Request)
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(b))
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, recorded{r.Method, r.URL.Path, r.Header.Get("Idempotency-Key"), r.Header.Get("Authorization"), form})
	n := len(rc.reqs)
	rc.mu.Unlock()
	w.Header().Set("Request-Id", "req_test")
	w.Header().Set("Content-Type", "application/json")
	rc.reply(n, w, r)
}

func newRecorded(t *testing.T, reply func(n int, w http.ResponseWriter, r *http.Request)) (*Client, *recorder) {
	rc := &recorder{reply: reply}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	c, err := New(Config{APIKey: "sk_test_recorded", APIBase: srv.URL, Timeout: 5 * time.Second, MaxNetworkRetries: 2})
	if err != nil {
		t.Fatal(err)
	}
	return c, rc
}

// The exact parameters and idempotency key we send.
func TestExactParameters(t *testing.T) {
	c, rc := newRecorded(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/v1/refunds"):
			_, _ = io.WriteString(w, `{"id":"re_1","object":"refund","amount":1500,"currency":"usd","status":"succeeded"}`)
		case strings.HasSuffix(r.URL.Path, "/balance_transactions"):
			_, _ = io.WriteString(w, `{"id":"cbtxn_1","object":"customer_balance_transaction","amount":-2500,"currency":"usd"}`)
		default:
			_, _ = io.WriteString(w, `{"id":"sub_9","object":"subscription","status":"active"}`)
		}
	})
	ctx := context.Background()
	res, err := c.Refund(ctx, billing.RefundRequest{Key: key("act9"), ChargeID: "ch_9", Amount: 1500, Reason: "requested_by_customer", Note: "charged twice"})
	if err != nil {
		t.Fatal(err)
	}
	if res.ObjectID != "re_1" || res.RequestID != "req_test" || res.Amount != 1500 {
		t.Fatalf("result: %+v", res)
	}
	trial := time.Date(2026, 12, 24, 0, 0, 0, 0, time.UTC)
	if _, err := c.ExtendTrial(ctx, "sub_9", trial, key("act10")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ResumeCollection(ctx, "sub_9", key("act11")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreditBalance(ctx, billing.CreditRequest{Key: key("act12"), CustomerID: "cus_9", Amount: 2500, Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		path, idem string
		form       map[string]string
	}{
		{"/v1/refunds", "act_act9", map[string]string{"charge": "ch_9", "amount": "1500", "reason": "requested_by_customer",
			"metadata[recourse_action_id]": "act9", "metadata[recourse_case_id]": "case_1", "metadata[recourse_reason]": "charged twice"}},
		{"/v1/subscriptions/sub_9", "act_act10", map[string]string{"trial_end": "1798070400", "proration_behavior": "none"}},
		{"/v1/subscriptions/sub_9", "act_act11", map[string]string{"pause_collection": ""}},
		{"/v1/customers/cus_9/balance_transactions", "act_act12", map[string]string{"amount": "-2500", "currency": "usd"}},
	}
	if len(rc.reqs) != len(want) {
		t.Fatalf("%d requests, want %d", len(rc.reqs), len(want))
	}
	for i, w := range want {
		got := rc.reqs[i]
		if got.method != http.MethodPost || got.path != w.path || got.idemKey != w.idem || got.auth != "Bearer sk_test_recorded" {
			t.Errorf("request %d: %s %s key=%q auth=%q", i, got.method, got.path, got.idemKey, got.auth)
		}
		for k, v := range w.form {
			if vals, ok := got.form[k]; !ok || vals[0] != v {
				t.Errorf("request %d: %s = %q, want %q (form %v)", i, k, got.form.Get(k), v, got.form)
			}
		}
	}
}

// A 5xx is retried by stripe-go with the same idempotency key; a card error
// is not retried and reads as a refusal; a 429 reads as rate limiting.
func TestRetriesAndErrors(t *testing.T) {
	c, rc := newRecorded(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Idempotency-Key") {
		case "act_flaky":
			if n < 3 {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = io.WriteString(w, `{"error":{"type":"api_error","message":"try again"}}`)
				return
			}
			_, _ = io.WriteString(w, `{"id":"in_1","object":"invoice","status":"paid","amount_paid":4900,"currency":"usd"}`)
		case "act_declined":
			w.WriteHeader(http.StatusPaymentRequired)
			_, _ = io.WriteString(w, `{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds."}}`)
		case "act_slow":
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"error":{"type":"invalid_request_error","code":"rate_limit","message":"Too many requests"}}`)
		}
	})
	ctx := context.Background()
	res, err := c.PayInvoice(ctx, "in_1", billing.Key{IdempotencyKey: "act_flaky"})
	if err != nil || res.Status != "paid" {
		t.Fatalf("flaky: %v %+v", err, res)
	}
	if len(rc.reqs) != 3 || rc.reqs[0].idemKey != rc.reqs[2].idemKey {
		t.Fatalf("retries: %d requests", len(rc.reqs))
	}

	_, err = c.PayInvoice(ctx, "in_2", billing.Key{IdempotencyKey: "act_declined"})
	var pe *billing.ProviderError
	if !errors.As(err, &pe) || pe.Type != "card_error" || pe.Code != "card_declined" || !strings.Contains(pe.Message, "insufficient funds") {
		t.Fatalf("declined: %v", err)
	}
	coded, _ := errs.As(billing.AsCoded(err))
	if coded == nil || coded.Kind != errs.EUNPROCESSABLE || !strings.Contains(coded.Message, "insufficient funds") || coded.Details["provider_error_code"] != "card_declined" {
		t.Fatalf("declined maps to %+v", coded)
	}

	_, err = c.PayInvoice(ctx, "in_3", billing.Key{IdempotencyKey: "act_slow"})
	if coded, _ := errs.As(billing.AsCoded(err)); coded == nil || coded.Kind != errs.ERATELIMIT {
		t.Fatalf("rate limit maps to %v", err)
	}
}

func TestUnreachableProviderIsUnavailableNotInternal(t *testing.T) {
	c, err := New(Config{APIKey: "sk_test_x", APIBase: "http://127.0.0.1:1", Timeout: time.Second, MaxNetworkRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Refund(context.Background(), billing.RefundRequest{Key: key("z"), ChargeID: "ch_1"})
	coded, _ := errs.As(billing.AsCoded(err))
	if coded == nil || coded.Kind != errs.EUNAVAILABLE {
		t.Fatalf("unreachable maps to %v", err)
	}
	if _, err := New(Config{}); err == nil {
		t.Fatal("client without a key")
	}
}

// minimalPDF is a small, valid one-page PDF.
const minimalPDF = "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n" +
	"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"

// The Files API is multipart on the uploads backend; stripe-mock validates
// it against the spec and answers with a file id.
func TestUploadFileAgainstStripeMock(t *testing.T) {
	m := stripemock.Start(t)
	c, err := New(Config{APIKey: "sk_test_123", APIBase: m.URL, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.UploadFile(context.Background(), billing.FileUpload{Key: key("f1"), Purpose: "dispute_evidence",
		Name: "rebuttal-dp_1.pdf", MIMEType: "application/pdf", Content: []byte(minimalPDF)})
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	if !strings.HasPrefix(res.ObjectID, "file_") {
		t.Fatalf("file id %q, want file_…", res.ObjectID)
	}
}
