package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/actions"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/pan"
)

// The case page's action forms. Each form posts to POST /cases/:id/actions,
// which calls actions.Service.Request as the signed-in principal with the
// form's server-generated idempotency_key as the client key: a double
// click or a resubmitted form acts once, whatever the browser does. Each
// form shows actions.Service.Preview — the same plan and policy code —
// rendered with the page and refreshed by htmx as the agent types (POST
// /cases/:id/actions/preview, a fragment).

// actionsPanel is the actions section of the case page (#case-actions).
type actionsPanel struct {
	CaseID string
	// Available: the server has an actions service.
	Available bool
	// CanRequest: the viewer holds actions:request; Open: the case is open
	// (a closed case takes no action).
	CanRequest, Open bool
	Forms            []actionForm
	// EvidenceLink: the viewer may send dispute evidence, from the
	// dispute workbench (/cases/:id/evidence).
	EvidenceLink bool
	// Notice says what became of the action just requested (?action=).
	Notice      string
	NoticeClass string
	List        []actions.Action
	ListMissing bool
}

// actionForm is one action's form.
type actionForm struct {
	Type               actions.Type
	Title, ReasonLabel string
	// Key is the idempotency key the form carries.
	Key string
	// Currency is the currency amounts are entered in ("" unknown);
	// CurrencyLabel is how the form names it (USD).
	Currency, CurrencyLabel string
	CSRF                    string
	Values                  map[string]string
	// Options are the choices of the select fields, by field.
	Options map[string][]string
	Preview previewView
	// Error and ErrorCode: why the last submission of this form was refused.
	Error, ErrorCode string
}

// previewView is the preview fragment's data.
type previewView struct {
	CaseID string
	Type   actions.Type
	P      *actions.Preview
	// Missing lists the required fields not filled in yet (amount,
	// reason); a missing reason is planned with a stand-in, so the preview
	// still says what policy makes of the rest.
	Missing   []string
	Error     string
	ErrorCode string
	status    int // the error's HTTP status, for the fragment endpoint
}

// Needs reports whether field is still to be filled in.
func (pv previewView) Needs(field string) bool { return slices.Contains(pv.Missing, field) }

// formState is a submitted form shown again with its error (set by
// requestAction on the echo context for actionsPanel).
type formState struct {
	Type          actions.Type
	Key           string
	Values        map[string]string
	Error, Code   string
	PreviewResult *previewView
}

// actionTitles name the forms, in the order they are shown, and label
// their reason fields (each label unique on the page).
var actionTitles = []struct {
	Type          actions.Type
	Title, Reason string
}{
	{actions.Refund, "Refund", "Reason for the refund"},
	{actions.RetryPayment, "Retry the payment", "Reason for the retry"},
	{actions.ApplyCredit, "Credit the customer's balance", "Reason for the credit"},
	{actions.ExtendTrial, "Extend the trial", "Reason for the extension"},
	{actions.PauseCollection, "Pause collection", "Reason for the pause"},
	{actions.ResumeCollection, "Resume collection", "Reason to resume"},
	{actions.CancelSubscription, "Cancel the subscription", "Reason for cancelling (the customer's words)"},
	{actions.ReactivateSubscription, "Reactivate the subscription", "Reason to reactivate"},
	{actions.AcceptDispute, "Accept the dispute", "Reason to accept the loss"},
}

// formFields are the form fields each action type takes, beyond reason.
var formFields = map[actions.Type][]string{
	actions.Refund:             {"amount", "refund_reason"},
	actions.ApplyCredit:        {"amount", "description"},
	actions.ExtendTrial:        {"days"},
	actions.PauseCollection:    {"days", "behavior"},
	actions.CancelSubscription: {"mode", "refund", "feedback", "retention_offer"},
}

// formOptions are the choices the API takes for the select fields.
var formOptions = map[string][]string{
	"refund_reason":   {"requested_by_customer", "duplicate", "fraudulent"},
	"behavior":        {"void", "keep_as_draft", "mark_uncollectible"},
	"feedback":        {"too_expensive", "missing_features", "switched_service", "unused", "customer_service", "too_complex", "low_quality", "other"},
	"retention_offer": {"declined", "accepted", "not_offered"},
}

// newFormKey is a fresh idempotency key for a form.
func newFormKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "console_" + hex.EncodeToString(b)
}

// applicable lists the action types to offer on case cs to role: those the
// role table lets it request (actions.Permitted, exactly the API's check)
// and that the case's links and mirrored objects make possible at all;
// policy is left to the preview.
func applicable(role auth.Role, cs cases.Case, linked cases.Linked) []actions.Type {
	has := func(s *string) bool { return s != nil && *s != "" }
	sub := linked.Subscription
	ended := sub != nil && (sub.Status == "canceled" || sub.Status == "incomplete_expired")
	offer := map[actions.Type]bool{
		actions.Refund:                 (has(cs.Links.Charge) || has(cs.Links.Invoice)) && (linked.Charge == nil || linked.Charge.Status != "failed"),
		actions.RetryPayment:           has(cs.Links.Invoice) && (linked.Invoice == nil || linked.Invoice.Status == "open"),
		actions.ApplyCredit:            has(cs.Links.Customer) && cs.Kind != cases.KindDispute,
		actions.ExtendTrial:            has(cs.Links.Subscription) && sub != nil && sub.Status == "trialing",
		actions.PauseCollection:        has(cs.Links.Subscription) && !ended && (sub == nil || sub.PauseCollection == ""),
		actions.ResumeCollection:       has(cs.Links.Subscription) && sub != nil && sub.PauseCollection != "",
		actions.CancelSubscription:     has(cs.Links.Subscription) && !ended && (sub == nil || !sub.CancelAtPeriodEnd),
		actions.ReactivateSubscription: has(cs.Links.Subscription) && sub != nil && sub.CancelAtPeriodEnd && !ended,
		actions.AcceptDispute:          has(cs.Links.Dispute),
	}
	var out []actions.Type
	for _, t := range actionTitles {
		if offer[t.Type] && actions.Permitted(role, cs.Kind, t.Type) {
			out = append(out, t.Type)
		}
	}
	return out
}

// currencyOf is the currency the case's amounts are in, from its mirrored
// objects.
func currencyOf(linked cases.Linked) string {
	switch {
	case linked.Charge != nil && linked.Charge.Currency != "":
		return linked.Charge.Currency
	case linked.Invoice != nil && linked.Invoice.Currency != "":
		return linked.Invoice.Currency
	case linked.Subscription != nil && linked.Subscription.Currency != "":
		return linked.Subscription.Currency
	case linked.Dispute != nil:
		return linked.Dispute.Currency
	}
	return ""
}

// previewBudget bounds the previews rendered with the page; a preview not
// ready by then is fetched by the browser (htmx, on load).
const previewBudget = 3 * time.Second

// actionsPanel builds the actions section of case cs for the viewer.
func (con *Console) actionsPanel(c echo.Context, cs cases.Case, linked cases.Linked) actionsPanel {
	ctx := c.Request().Context()
	p, _ := auth.FromContext(ctx)
	ap := actionsPanel{CaseID: cs.ID, Available: con.opt.Actions != nil, Open: cs.IsOpen(),
		CanRequest: auth.Allowed(p.Role, auth.PermActionsRequest)}
	if !ap.Available {
		return ap
	}
	list, err := con.opt.Actions.ForCase(ctx, cs.ID)
	if err != nil {
		con.opt.Log.Warn("console: list actions", "case", cs.ID, "err", err)
		ap.ListMissing = true
	}
	ap.List = list
	if id := c.QueryParam("action"); id != "" {
		for _, a := range list {
			if a.ID == id {
				ap.Notice, ap.NoticeClass = actionNotice(a)
			}
		}
	}
	if !ap.CanRequest || !ap.Open {
		return ap
	}
	ap.EvidenceLink = cs.Links.Dispute != nil && actions.Permitted(p.Role, cs.Kind, actions.SubmitEvidence)
	state, _ := c.Get("actionForm").(*formState)
	pctx, cancel := context.WithTimeout(ctx, previewBudget)
	defer cancel()
	cur := currencyOf(linked)
	csrf := ""
	if s, ok := c.Get("session").(session); ok {
		csrf = s.CSRF
	}
	for _, t := range applicable(p.Role, cs, linked) {
		f := actionForm{Type: t, Title: titleOf(t), ReasonLabel: reasonLabelOf(t), Key: newFormKey(), Currency: cur, CurrencyLabel: strings.ToUpper(cur),
			CSRF: csrf, Values: map[string]string{}, Options: formOptions}
		if state != nil && state.Type == t {
			f.Key, f.Values, f.Error, f.ErrorCode = state.Key, state.Values, state.Error, state.Code
			state = nil
		}
		f.Preview = con.preview(pctx, cs.ID, t, f.Values, cur)
		if cur == "" && f.Preview.P != nil && f.Preview.P.Currency != "" {
			// Not mirrored for the case page, but known to policy (e.g. read
			// from the provider): amounts are in this currency.
			cur = f.Preview.P.Currency
			f.Currency, f.CurrencyLabel = cur, strings.ToUpper(cur)
		}
		ap.Forms = append(ap.Forms, f)
	}
	if state != nil {
		// No form of this type on the page (an unknown type, or one the
		// case no longer offers): the error goes above the forms.
		ap.Notice, ap.NoticeClass = state.Error+" ("+state.Code+")", "error"
	}
	return ap
}

func reasonLabelOf(t actions.Type) string {
	for _, x := range actionTitles {
		if x.Type == t {
			return x.Reason
		}
	}
	return "Reason"
}

func titleOf(t actions.Type) string {
	for _, x := range actionTitles {
		if x.Type == t {
			return x.Title
		}
	}
	return strings.ReplaceAll(string(t), "_", " ")
}

// actionNotice says what became of action a, by its status.
func actionNotice(a actions.Action) (string, string) {
	what := titleOf(a.Type)
	if a.Amount != nil && a.Currency != nil {
		what += " of " + money(*a.Amount, *a.Currency)
	}
	switch a.Status {
	case actions.StatusSucceeded:
		return fmt.Sprintf("%s succeeded (%s).", what, derefOr(a.ProviderObjectID, a.ID)), "notice"
	case actions.StatusPendingApproval:
		return fmt.Sprintf("%s is waiting for a supervisor's approval: %s.", what, strings.Join(a.ApprovalReasons, "; ")), "notice"
	case actions.StatusExecuting:
		return what + " was sent to the billing provider; its answer is not in yet.", "notice"
	case actions.StatusRefused:
		if a.Error != nil {
			return fmt.Sprintf("%s was refused by policy (%s): %s", what, a.Error.Code, a.Error.Message), "error"
		}
	case actions.StatusFailed:
		if a.Error != nil {
			return fmt.Sprintf("%s failed at the billing provider (%s): %s", what, a.Error.Code, a.Error.Message), "error"
		}
	case actions.StatusRejected:
		return what + " was rejected by a supervisor.", "error"
	}
	return fmt.Sprintf("%s: %s.", what, strings.ReplaceAll(string(a.Status), "_", " ")), "notice"
}

func derefOr(s *string, or string) string {
	if s == nil || *s == "" {
		return or
	}
	return *s
}

// standInReason stands in for a reason not typed yet, so that a preview can
// say what policy makes of the rest (the request itself still needs one).
const standInReason = "(reason not entered yet)"

// preview runs actions.Service.Preview for the form's values.
func (con *Console) preview(ctx context.Context, caseID string, t actions.Type, values map[string]string, currency string) previewView {
	pv := previewView{CaseID: caseID, Type: t}
	req, missing, err := requestOf(t, values, currency)
	if err != nil {
		pv.Error, pv.ErrorCode = inlineError(err)
		pv.status = http.StatusBadRequest
		return pv
	}
	out, err := con.opt.Actions.Preview(ctx, caseID, req)
	if err == nil && req.Reason == "" && out.Refusal != nil && out.Refusal.Code == "reason_required" {
		missing = append(missing, "reason")
		req.Reason = standInReason
		out, err = con.opt.Actions.Preview(ctx, caseID, req)
	}
	pv.Missing = missing
	if err != nil {
		if ctx.Err() != nil {
			return pv // not ready in time: the browser fetches it (hx-trigger load)
		}
		pv.Error, pv.ErrorCode = inlineError(err)
		pv.status = http.StatusInternalServerError
		if e, ok := errs.As(err); ok {
			pv.status = httpx.StatusOf(e.Kind)
		}
		return pv
	}
	pv.P = &out
	return pv
}

// requestOf turns a form's values into the API's request body. Amounts are
// entered in major units of currency. missing is ["amount"] when a refund
// or credit has none: the API would refund everything left, the console
// asks for the amount so that nobody does that by leaving a field empty.
func requestOf(t actions.Type, v map[string]string, currency string) (actions.Request, []string, error) {
	get := func(k string) string { return strings.TrimSpace(v[k]) }
	params := map[string]any{}
	var missing []string
	for _, k := range formFields[t] {
		s := get(k)
		if s == "" {
			continue
		}
		switch k {
		case "amount":
			n, err := minorUnits(s, currency)
			if err != nil {
				return actions.Request{}, nil, err
			}
			params[k] = n
		case "days":
			n, err := strconv.Atoi(s)
			if err != nil {
				return actions.Request{}, nil, errs.Coded(errs.EINVALID, "invalid_params", "days must be a whole number")
			}
			params[k] = n
		default:
			params[k] = s
		}
	}
	if t == actions.ApplyCredit && currency != "" {
		params["currency"] = currency
	}
	if (t == actions.Refund || t == actions.ApplyCredit) && params["amount"] == nil {
		missing = append(missing, "amount")
	}
	reason := get("reason")
	var raw json.RawMessage
	if len(params) > 0 {
		raw, _ = json.Marshal(params)
	}
	return actions.Request{Type: t, Params: raw, Reason: reason}, missing, nil
}

// minorUnits reads an amount typed in major units ("150", "150.5",
// "150.50") as integer minor units of currency, without floats.
func minorUnits(s, currency string) (int64, error) {
	digits := 2
	if zeroDecimal[strings.ToLower(currency)] {
		digits = 0
	}
	bad := errs.Coded(errs.EINVALID, "invalid_amount", "write the amount as a number like %s", map[int]string{0: "150", 2: "150.00"}[digits])
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || len(whole) > 12 || len(frac) > digits || (dot && (digits == 0 || frac == "")) {
		return 0, bad
	}
	for _, r := range whole + frac {
		if r < '0' || r > '9' {
			return 0, bad
		}
	}
	frac += strings.Repeat("0", digits-len(frac))
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil {
		return 0, bad
	}
	return n, nil
}

// formValues are the action fields of the posted form, card numbers
// masked as the API masks every text it binds (pan.MaskFields): nothing a
// person types carries a full card number past the edge, or back into the
// page.
func formValues(c echo.Context, t actions.Type) map[string]string {
	v := map[string]string{"reason": pan.Mask(c.FormValue("reason"))}
	for _, k := range formFields[t] {
		v[k] = pan.Mask(c.FormValue(k))
	}
	return v
}

// requestAction is POST /cases/:id/actions: type, idempotency_key, reason
// and the type's fields, through actions.Service.Request as the signed-in
// principal, exactly as POST /api/v1/cases/:id/actions with the key as
// Idempotency-Key. An action recorded (done, waiting for approval, refused
// or failed at the provider) answers 303 to the case page, which says what
// became of it; a request refused before anything was recorded renders the
// page again with the error in its form and the API's status (200 to htmx,
// which swaps only successful answers).
func (con *Console) requestAction(c echo.Context) error {
	p, _ := auth.FromContext(c.Request().Context())
	id := c.Param("id")
	if !auth.Allowed(p.Role, auth.PermActionsRequest) {
		return con.renderError(c, http.StatusForbidden, "Your role may not request actions.")
	}
	if con.opt.Actions == nil {
		return con.renderError(c, http.StatusServiceUnavailable, "Actions are not available on this server.")
	}
	t := actions.Type(c.FormValue("type"))
	key := pan.Mask(strings.TrimSpace(c.FormValue("idempotency_key")))
	values := formValues(c, t)
	state := &formState{Type: t, Key: key, Values: values}
	req, missing, err := requestOf(t, values, c.FormValue("currency"))
	if err == nil && slices.Contains(missing, "amount") {
		err = errs.Coded(errs.EINVALID, "amount_required", "enter the amount")
	}
	var out actions.Outcome
	if err == nil {
		out, err = con.opt.Actions.Request(c.Request().Context(), id, key, req)
	}
	if out.Action.ID != "" && out.Action.CaseID == id {
		return c.Redirect(http.StatusSeeOther, "/cases/"+id+"?action="+out.Action.ID+"#case-actions")
	}
	status := http.StatusInternalServerError
	if e, ok := errs.As(err); ok {
		status = httpx.StatusOf(e.Kind)
	}
	switch {
	case status == http.StatusNotFound:
		return con.fail(c, err)
	case status == http.StatusForbidden && !con.offered(c, p, id, t):
		// The role may not request this action here: there is no form to
		// show the error in.
		return con.fail(c, err)
	case status >= 500:
		con.opt.Log.Error("console: request action", "case", id, "type", t, "err", err)
	}
	state.Error, state.Code = inlineError(err)
	c.Set("actionForm", state)
	if c.Request().Header.Get("HX-Request") == "true" {
		status = http.StatusOK
	}
	return con.showCase(c, status, id, nil, "", "")
}

// offered reports whether the case page offers p a form for t.
func (con *Console) offered(c echo.Context, p auth.Principal, id string, t actions.Type) bool {
	cs, err := con.opt.Cases.Get(c.Request().Context(), id)
	return err == nil && actions.Permitted(p.Role, cs.Kind, t)
}

// previewAction is POST /cases/:id/actions/preview: the form's fields, the
// preview fragment for it.
func (con *Console) previewAction(c echo.Context) error {
	p, _ := auth.FromContext(c.Request().Context())
	if !auth.Allowed(p.Role, auth.PermActionsRequest) {
		return c.NoContent(http.StatusForbidden)
	}
	if con.opt.Actions == nil {
		return c.NoContent(http.StatusServiceUnavailable)
	}
	t := actions.Type(c.FormValue("type"))
	pv := con.preview(c.Request().Context(), c.Param("id"), t, formValues(c, t), c.FormValue("currency"))
	switch pv.status {
	case http.StatusNotFound, http.StatusForbidden:
		return c.NoContent(pv.status)
	}
	// Other errors are shown in the fragment (htmx swaps only 2xx).
	return con.render(c, http.StatusOK, "action-preview", pv)
}
