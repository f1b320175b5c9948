// Package stripe implements billing.Provider with stripe-go v76: one client
// per configuration (never the package-level key), an idempotency key on
// every call, a timeout, and stripe-go's network retries. API base is
// configurable so tests and docker-compose can point it at stripe-mock.
package stripe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/recourse-hq/recourse/billing"
)

// DefaultAPIBase is Stripe's own API.
const DefaultAPIBase = "https://api.stripe.com"

// Config configures a Client.
type Config struct {
	APIKey            string
	APIBase           string        // default DefaultAPIBase
	Timeout           time.Duration // per HTTP attempt; default 20s
	MaxNetworkRetries int64         // stripe-go's retries on network errors and 409/429/5xx; default 2
	Logger            *slog.Logger
}

// Client is the Stripe implementation of billing.Provider.
type Client struct {
	api *client.API
}

var _ billing.Provider = (*Client)(nil)

// New returns a client for cfg. It makes no network call.
func New(cfg Config) (*Client, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("stripe: an API key is required (RECOURSE_STRIPE_API_KEY)")
	}
	if cfg.APIBase == "" {
		cfg.APIBase = DefaultAPIBase
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 20 * time.Second
	}
	retries := cfg.MaxNetworkRetries
	if retries == 0 {
		retries = 2
	}
	if retries < 0 {
		retries = 0
	}
	bc := &stripego.BackendConfig{
		URL:               stripego.String(strings.TrimRight(cfg.APIBase, "/")),
		HTTPClient:        &http.Client{Timeout: cfg.Timeout},
		MaxNetworkRetries: stripego.Int64(retries),
		LeveledLogger:     leveledLogger{cfg.Logger},
	}
	b := stripego.GetBackendWithConfig(stripego.APIBackend, bc)
	api := client.New(cfg.APIKey, &stripego.Backends{API: b, Uploads: b, Connect: b})
	return &Client{api: api}, nil
}

// prepare sets the context and idempotency key on p and, for endpoints that
// take metadata (md non-nil), tags the object with the Recourse action and
// case so it can be traced back from the Stripe Dashboard.
func prepare(ctx context.Context, p *stripego.Params, k billing.Key, md metadataAdder) {
	p.Context = ctx
	if k.IdempotencyKey != "" {
		p.SetIdempotencyKey(k.IdempotencyKey)
	}
	if md == nil {
		return
	}
	if k.ActionID != "" {
		md.AddMetadata("recourse_action_id", k.ActionID)
	}
	if k.CaseID != "" {
		md.AddMetadata("recourse_case_id", k.CaseID)
	}
}

// metadataAdder is implemented by the params of endpoints that take metadata.
type metadataAdder interface{ AddMetadata(key, value string) }

func requestID(r stripego.APIResource) string {
	if r.LastResponse != nil {
		return r.LastResponse.RequestID
	}
	return ""
}

// Refund creates a refund on a charge or payment intent.
func (c *Client) Refund(ctx context.Context, r billing.RefundRequest) (billing.Result, error) {
	p := &stripego.RefundParams{}
	prepare(ctx, &p.Params, r.Key, p)
	switch {
	case r.ChargeID != "":
		p.Charge = stripego.String(r.ChargeID)
	case r.PaymentIntentID != "":
		p.PaymentIntent = stripego.String(r.PaymentIntentID)
	default:
		return billing.Result{}, &billing.ProviderError{Type: "invalid_request_error", Message: "a refund needs a charge or payment intent"}
	}
	if r.Amount > 0 {
		p.Amount = stripego.Int64(r.Amount)
	}
	if r.Reason != "" {
		p.Reason = stripego.String(r.Reason)
	}
	if r.Note != "" {
		p.AddMetadata("recourse_reason", truncate(r.Note, 500))
	}
	re, err := c.api.Refunds.New(p)
	if err != nil {
		return billing.Result{}, wrap("refund", err)
	}
	res := billing.Result{ObjectID: re.ID, Status: string(re.Status), RequestID: requestID(re.APIResource), Amount: re.Amount, Currency: string(re.Currency)}
	if re.FailureReason != "" {
		res.Raw = map[string]any{"failure_reason": string(re.FailureReason)}
	}
	return res, nil
}

func subResult(s *stripego.Subscription) billing.Result {
	raw := map[string]any{"cancel_at_period_end": s.CancelAtPeriodEnd}
	if s.TrialEnd > 0 {
		raw["trial_end"] = s.TrialEnd
	}
	if s.CanceledAt > 0 {
		raw["canceled_at"] = s.CanceledAt
	}
	if s.PauseCollection != nil {
		raw["pause_collection"] = string(s.PauseCollection.Behavior)
	}
	return billing.Result{ObjectID: s.ID, Status: string(s.Status), RequestID: requestID(s.APIResource), Raw: raw}
}

// CancelSubscription cancels now, or sets cancel_at_period_end.
func (c *Client) CancelSubscription(ctx context.Context, r billing.CancelRequest) (billing.Result, error) {
	details := func() (string, string) { return r.Feedback, truncate(r.Comment, 5000) }
	if r.AtPeriodEnd {
		p := &stripego.SubscriptionParams{CancelAtPeriodEnd: stripego.Bool(true)}
		prepare(ctx, &p.Params, r.Key, p)
		if fb, cm := details(); fb != "" || cm != "" {
			p.CancellationDetails = &stripego.SubscriptionCancellationDetailsParams{}
			if fb != "" {
				p.CancellationDetails.Feedback = stripego.String(fb)
			}
			if cm != "" {
				p.CancellationDetails.Comment = stripego.String(cm)
			}
		}
		s, err := c.api.Subscriptions.Update(r.SubscriptionID, p)
		if err != nil {
			return billing.Result{}, wrap("cancel subscription at period end", err)
		}
		return subResult(s), nil
	}
	p := &stripego.SubscriptionCancelParams{Prorate: stripego.Bool(r.Prorate), InvoiceNow: stripego.Bool(r.InvoiceNow)}
	prepare(ctx, &p.Params, r.Key, nil) // the cancel endpoint takes no metadata
	if fb, cm := details(); fb != "" || cm != "" {
		p.CancellationDetails = &stripego.SubscriptionCancelCancellationDetailsParams{}
		if fb != "" {
			p.CancellationDetails.Feedback = stripego.String(fb)
		}
		if cm != "" {
			p.CancellationDetails.Comment = stripego.String(cm)
		}
	}
	s, err := c.api.Subscriptions.Cancel(r.SubscriptionID, p)
	if err != nil {
		return billing.Result{}, wrap("cancel subscription", err)
	}
	return subResult(s), nil
}

// SetCancelAtPeriodEnd sets or clears cancel_at_period_end.
func (c *Client) SetCancelAtPeriodEnd(ctx context.Context, subscriptionID string, cancel bool, k billing.Key) (billing.Result, error) {
	p := &stripego.SubscriptionParams{CancelAtPeriodEnd: stripego.Bool(cancel)}
	prepare(ctx, &p.Params, k, p)
	s, err := c.api.Subscriptions.Update(subscriptionID, p)
	if err != nil {
		return billing.Result{}, wrap("update cancel_at_period_end", err)
	}
	return subResult(s), nil
}

// ExtendTrial moves trial_end without proration.
func (c *Client) ExtendTrial(ctx context.Context, subscriptionID string, trialEnd time.Time, k billing.Key) (billing.Result, error) {
	p := &stripego.SubscriptionParams{TrialEnd: stripego.Int64(trialEnd.Unix()), ProrationBehavior: stripego.String("none")}
	prepare(ctx, &p.Params, k, p)
	s, err := c.api.Subscriptions.Update(subscriptionID, p)
	if err != nil {
		return billing.Result{}, wrap("extend trial", err)
	}
	return subResult(s), nil
}

// PauseCollection pauses collection.
func (c *Client) PauseCollection(ctx context.Context, subscriptionID, behavior string, resumesAt *time.Time, k billing.Key) (billing.Result, error) {
	pc := &stripego.SubscriptionPauseCollectionParams{Behavior: stripego.String(behavior)}
	if resumesAt != nil {
		pc.ResumesAt = stripego.Int64(resumesAt.Unix())
	}
	p := &stripego.SubscriptionParams{PauseCollection: pc}
	prepare(ctx, &p.Params, k, p)
	s, err := c.api.Subscriptions.Update(subscriptionID, p)
	if err != nil {
		return billing.Result{}, wrap("pause collection", err)
	}
	return subResult(s), nil
}

// ResumeCollection clears pause_collection (Stripe takes an empty value).
func (c *Client) ResumeCollection(ctx context.Context, subscriptionID string, k billing.Key) (billing.Result, error) {
	p := &stripego.SubscriptionParams{}
	prepare(ctx, &p.Params, k, p)
	p.AddExtra("pause_collection", "")
	s, err := c.api.Subscriptions.Update(subscriptionID, p)
	if err != nil {
		return billing.Result{}, wrap("resume collection", err)
	}
	return subResult(s), nil
}

// PayInvoice attempts to pay an open invoice now.
func (c *Client) PayInvoice(ctx context.Context, invoiceID string, k billing.Key) (billing.Result, error) {
	p := &stripego.InvoicePayParams{}
	prepare(ctx, &p.Params, k, nil) // the pay endpoint takes no metadata
	in, err := c.api.Invoices.Pay(invoiceID, p)
	if err != nil {
		return billing.Result{}, wrap("pay invoice", err)
	}
	return billing.Result{ObjectID: in.ID, Status: string(in.Status), RequestID: requestID(in.APIResource), Amount: in.AmountPaid, Currency: string(in.Currency),
		Raw: map[string]any{"attempt_count": in.AttemptCount, "paid": in.Paid}}, nil
}

// CreditBalance adds a credit (a negative balance transaction).
func (c *Client) CreditBalance(ctx context.Context, r billing.CreditRequest) (billing.Result, error) {
	if r.Amount <= 0 {
		return billing.Result{}, &billing.ProviderError{Type: "invalid_request_error", Message: "credit amount must be positive"}
	}
	p := &stripego.CustomerBalanceTransactionParams{
		Customer: stripego.String(r.CustomerID),
		Amount:   stripego.Int64(-r.Amount),
		Currency: stripego.String(strings.ToLower(r.Currency)),
	}
	if r.Description != "" {
		p.Description = stripego.String(truncate(r.Description, 350))
	}
	prepare(ctx, &p.Params, r.Key, p)
	tx, err := c.api.CustomerBalanceTransactions.New(p)
	if err != nil {
		return billing.Result{}, wrap("credit customer balance", err)
	}
	return billing.Result{ObjectID: tx.ID, RequestID: requestID(tx.APIResource), Amount: -tx.Amount, Currency: string(tx.Currency),
		Raw: map[string]any{"ending_balance": tx.EndingBalance}}, nil
}

// CloseDispute accepts the dispute as lost.
func (c *Client) CloseDispute(ctx context.Context, disputeID string, k billing.Key) (billing.Result, error) {
	p := &stripego.DisputeParams{}
	prepare(ctx, &p.Params, k, nil) // the close endpoint takes no metadata
	d, err := c.api.Disputes.Close(disputeID, p)
	if err != nil {
		return billing.Result{}, wrap("close dispute", err)
	}
	return billing.Result{ObjectID: d.ID, Status: string(d.Status), RequestID: requestID(d.APIResource), Amount: d.Amount, Currency: string(d.Currency)}, nil
}

// UpdateDisputeEvidence stages or submits evidence fields (text fields and
// file ids, keyed by Stripe's evidence field names).
func (c *Client) UpdateDisputeEvidence(ctx context.Context, disputeID string, evidence map[string]string, submit bool, k billing.Key) (billing.Result, error) {
	p := &stripego.DisputeParams{Submit: stripego.Bool(submit)}
	prepare(ctx, &p.Params, k, p)
	for field, v := range evidence {
		p.AddExtra("evidence["+field+"]", v)
	}
	d, err := c.api.Disputes.Update(disputeID, p)
	if err != nil {
		return billing.Result{}, wrap("update dispute evidence", err)
	}
	raw := map[string]any{}
	if d.EvidenceDetails != nil {
		raw["submission_count"] = d.EvidenceDetails.SubmissionCount
		raw["has_evidence"] = d.EvidenceDetails.HasEvidence
	}
	return billing.Result{ObjectID: d.ID, Status: string(d.Status), RequestID: requestID(d.APIResource), Amount: d.Amount, Currency: string(d.Currency), Raw: raw}, nil
}

// UploadFile uploads a file through the Files API (multipart, on the
// uploads backend). Files carry no metadata we control beyond the name, so
// the idempotency key is what makes a retried upload create one file.
func (c *Client) UploadFile(ctx context.Context, f billing.FileUpload) (billing.Result, error) {
	p := &stripego.FileParams{
		Purpose:    stripego.String(f.Purpose),
		FileReader: bytes.NewReader(f.Content),
		Filename:   stripego.String(f.Name),
	}
	prepare(ctx, &p.Params, f.Key, nil)
	file, err := c.api.Files.New(p)
	if err != nil {
		return billing.Result{}, wrap("upload file", err)
	}
	return billing.Result{ObjectID: file.ID, RequestID: requestID(file.APIResource), Raw: map[string]any{"size": file.Size, "purpose": string(file.Purpose)}}, nil
}

// wrap turns a stripe-go error into a *billing.ProviderError.
func wrap(op string, err error) error {
	var se *stripego.Error
	if errors.As(err, &se) {
		pe := &billing.ProviderError{Type: string(se.Type), Code: string(se.Code), Message: se.Msg, RequestID: se.RequestID, HTTPStatus: se.HTTPStatusCode, Err: err}
		switch {
		case se.HTTPStatusCode == http.StatusTooManyRequests || se.Code == stripego.ErrorCodeRateLimit:
			pe.Type, pe.Retryable = "rate_limit", true
		case se.HTTPStatusCode >= 500:
			pe.Type, pe.Retryable = "api_error", true
		case se.HTTPStatusCode == http.StatusUnauthorized:
			pe.Type = "authentication_error"
		}
		if pe.Message == "" {
			pe.Message = op + " failed with HTTP " + strconv.Itoa(se.HTTPStatusCode)
		}
		if se.DeclineCode != "" {
			pe.Message += " (decline code " + string(se.DeclineCode) + ")"
		}
		return pe
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		// Network failure after stripe-go's own retries: the outcome is
		// unknown, so a retry must use the same idempotency key.
		return &billing.ProviderError{Type: "connection_error", Message: fmt.Sprintf("%s: could not reach the billing provider: %v", op, err), Retryable: true, Err: err}
	}
	return &billing.ProviderError{Type: "invalid_request_error", Message: fmt.Sprintf("%s: %v", op, err), Err: err}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// leveledLogger routes stripe-go's logs to slog, at debug, so request
// bodies never land in production logs.
type leveledLogger struct{ log *slog.Logger }

func (l leveledLogger) Debugf(format string, v ...any) { l.emit(slog.LevelDebug, format, v...) }
func (l leveledLogger) Infof(format string, v ...any)  { l.emit(slog.LevelDebug, format, v...) }
func (l leveledLogger) Warnf(format string, v ...any)  { l.emit(slog.LevelWarn, format, v...) }
func (l leveledLogger) Errorf(format string, v ...any) { l.emit(slog.LevelWarn, format, v...) }

func (l leveledLogger) emit(level slog.Level, format string, v ...any) {
	if l.log == nil {
		return
	}
	l.log.Log(context.Background(), level, "stripe: "+fmt.Sprintf(format, v...))
}
