package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/actions"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// The dispute workbench (GET /cases/:id/evidence) is the API's workbench
// (disputes.Workbench) and its evidence actions (actions.Service) in a
// page; it decides nothing itself. Permissions are the API's, route by
// route: reading the workbench and its packet needs facts:read (the page
// shows what the customer's facts prove), assembling and editing
// disputes:work, staging and submitting actions:request and disputes:work,
// accepting actions:request and disputes:accept.

// workbenchFormBytes bounds a workbench form: every evidence field at its
// limit together (150,000 characters, up to 4 bytes each, URL-encoded).
const workbenchFormBytes = 2 << 20

// packetCSP is the console's policy, except that the packet may be framed
// by the console's own pages (the workbench previews it).
var packetCSP = strings.Replace(ContentSecurityPolicy, "frame-ancestors 'none'", "frame-ancestors 'self'", 1)

func (con *Console) registerWorkbench(e *echo.Echo) {
	w := e.Group("", con.headers, con.bodyLimit(workbenchFormBytes), con.limit("ip"), con.session, con.limit("console"))
	w.GET("/cases/:id/evidence", con.workbench)
	w.GET("/cases/:id/evidence/packet.pdf", con.workbenchPacket)
	w.POST("/cases/:id/evidence", con.saveEvidence)
	w.POST("/cases/:id/evidence/assemble", con.assembleEvidence)
	w.POST("/cases/:id/evidence/actions", con.evidenceAction)
}

// evidenceField is one text field of the draft as the form shows it.
type evidenceField struct {
	Name, Label, Value string
	Need               disputes.Need
	Chars, Max         int
	Edited             bool
	// Error is the refusal of this field's last save (the API's code and
	// message).
	Error, ErrorCode string
}

// Over reports whether the value is over the field's limit.
func (f evidenceField) Over() bool { return f.Chars > f.Max }

type workbenchPage struct {
	page
	Case cases.Case
	Doc  disputes.EvidenceDocument
	// Fields are the draft's text fields and the checklist's, in checklist
	// order then by name; empty before the first assembly.
	Fields []evidenceField
	// PacketStale: fields were edited after the packet was built.
	PacketStale bool
	// Submitted: Stripe has the evidence; nothing changes it any more, so
	// no form to change it is offered.
	Submitted                      bool
	CanWork, CanSend, CanAccept    bool
	StageKey, SubmitKey, AcceptKey string
	// Actions are the case's evidence and acceptance actions, latest first;
	// Result is the one this page answers (?action=).
	Actions      []actions.Action
	Result       *actions.Action
	AcceptReason string
	SendReason   string
}

// workbenchReader answers the workbench's permission check the API makes on
// GET /cases/:id/evidence (facts:read): false renders 403 and nothing else.
func (con *Console) workbenchReader(c echo.Context) (auth.Principal, bool) {
	p, _ := auth.FromContext(c.Request().Context())
	return p, auth.Allowed(p.Role, auth.PermFactsRead) && auth.Allowed(p.Role, auth.PermCasesRead)
}

// workbench is GET /cases/:id/evidence.
func (con *Console) workbench(c echo.Context) error {
	if _, ok := con.workbenchReader(c); !ok {
		return con.renderError(c, http.StatusForbidden, "Your role may not open the dispute workbench.")
	}
	return con.showWorkbench(c, http.StatusOK, nil, nil)
}

// showWorkbench renders the workbench of case :id with status; failure is
// shown inline (and next to its field when it names one); typed, when set,
// is the field text the analyst sent, shown again instead of the draft's.
func (con *Console) showWorkbench(c echo.Context, status int, failure error, typed map[string]string) error {
	ctx := c.Request().Context()
	p, _ := auth.FromContext(ctx)
	id := c.Param("id")
	if con.opt.Workbench == nil {
		return con.renderError(c, http.StatusServiceUnavailable, "The dispute workbench is not available on this server.")
	}
	cs, err := con.opt.Cases.Get(ctx, id)
	if err != nil {
		return con.fail(c, err)
	}
	if cs.Kind != cases.KindDispute {
		return con.renderError(c, http.StatusNotFound, "This case is not a dispute: the evidence workbench is for dispute cases.")
	}
	doc, err := con.opt.Workbench.Evidence(ctx, id)
	if err != nil {
		return con.fail(c, err)
	}
	cs = cases.ForViewer(p, cs)
	pg := workbenchPage{page: con.basePage(c, "Evidence · "+cs.Title), Case: cs, Doc: doc,
		CanWork:   auth.Allowed(p.Role, auth.PermDisputesWork),
		CanSend:   con.opt.Actions != nil && auth.Allowed(p.Role, auth.PermActionsRequest) && auth.Allowed(p.Role, auth.PermDisputesWork),
		CanAccept: con.opt.Actions != nil && auth.Allowed(p.Role, auth.PermActionsRequest) && auth.Allowed(p.Role, auth.PermDisputeAccept),
		StageKey:  newFormKey(), SubmitKey: newFormKey(), AcceptKey: newFormKey()}
	if c.Request().Method == http.MethodPost {
		pg.SendReason, pg.AcceptReason = c.FormValue("reason"), c.FormValue("accept_reason")
	}
	pg.Fields = evidenceFormFields(doc, typed)
	pg.Submitted = doc.Draft != nil && doc.Draft.Status == disputes.DraftStatusSubmitted
	if d := doc.Draft; d != nil && d.AssembledAt != nil && d.UpdatedAt.After(*d.AssembledAt) {
		pg.PacketStale = true
	}
	if pg.Notice = workbenchNotices[c.QueryParam("done")]; failure != nil {
		pg.Notice = ""
		pg.Error, pg.ErrorCode = inlineWorkbenchError(failure)
		if e, ok := errs.As(failure); ok {
			if name, _ := e.Details["field"].(string); name != "" {
				for i := range pg.Fields {
					if pg.Fields[i].Name == name {
						pg.Fields[i].Error, pg.Fields[i].ErrorCode = pg.Error, pg.ErrorCode
					}
				}
			}
		}
	}
	if con.opt.Actions != nil {
		list, err := con.opt.Actions.ForCase(ctx, id)
		if err != nil {
			return con.fail(c, err)
		}
		for i := len(list) - 1; i >= 0; i-- {
			switch list[i].Type {
			case actions.StageEvidence, actions.SubmitEvidence, actions.AcceptDispute:
				pg.Actions = append(pg.Actions, list[i])
			}
		}
		if want := c.QueryParam("action"); want != "" {
			for i := range pg.Actions {
				if pg.Actions[i].ID == want {
					pg.Result = &pg.Actions[i]
				}
			}
		}
	}
	return con.render(c, status, "workbench.html", pg)
}

// workbenchNotices are the notices after a write, by ?done= (a fixed set:
// the URL never carries text to show).
var workbenchNotices = map[string]string{
	"assembled": "Evidence assembled: the fields and the rebuttal packet were rebuilt from the mirror and the customer's facts; fields you edited were kept.",
	"saved":     "Saved. The fields you changed count as edited: assembling again keeps them.",
	"unchanged": "Nothing to save: no field was changed.",
}

// inlineWorkbenchError is inlineError with the workbench's own conflicts
// said plainly.
func inlineWorkbenchError(err error) (string, string) {
	msg, code := inlineError(err)
	switch code {
	case disputes.CodeDraftChanged:
		msg = "The evidence changed after you opened this page (someone edited or assembled it), so your change was not saved. The page shows the evidence as it is now, with your text kept in the form: check it and save again. (" + msg + ")"
	case "evidence_changed":
		msg = "The evidence changed after you opened this page, so nothing was sent: review it as it is now and send it again. (" + msg + ")"
	}
	return msg, code
}

// evidenceFormFields lists the text fields the form edits: the draft's, then the
// checklist's text items not yet in it; typed overrides values.
func evidenceFormFields(doc disputes.EvidenceDocument, typed map[string]string) []evidenceField {
	d := doc.Draft
	if d == nil {
		return nil
	}
	need := map[string]disputes.Need{}
	var order []string
	for _, it := range doc.Checklist.Items {
		if it.Field.Kind() == disputes.FieldKindText {
			need[string(it.Field)] = it.Need
			order = append(order, string(it.Field))
		}
	}
	var rest []string
	for name := range d.Fields {
		if _, ok := need[name]; !ok {
			rest = append(rest, name)
		}
	}
	slices.Sort(rest)
	out := make([]evidenceField, 0, len(order)+len(rest))
	for _, name := range append(order, rest...) {
		v := d.Fields[name]
		if t, ok := typed[name]; ok {
			v = t
		}
		f := disputes.EvidenceField(name)
		out = append(out, evidenceField{Name: name, Label: fieldLabel(name), Value: v, Need: need[name],
			Chars: utf8.RuneCountInString(v), Max: f.MaxChars(), Edited: slices.Contains(d.EditedFields, name)})
	}
	return out
}

// fieldLabel is a field's name for people: "customer_purchase_ip" →
// "Customer purchase IP".
func fieldLabel(name string) string {
	words := strings.Split(name, "_")
	for i, w := range words {
		switch w {
		case "ip", "id":
			words[i] = strings.ToUpper(w)
		default:
			if i == 0 {
				words[i] = strings.ToUpper(w[:1]) + w[1:]
			}
		}
	}
	return strings.Join(words, " ")
}

func init() {
	funcs["percent"] = func(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }
	funcs["packetName"] = disputes.PacketName
	funcs["perm"] = func(s string) auth.Permission { return auth.Permission(s) }
	funcs["checkMark"] = func(status string) string {
		switch status {
		case disputes.ItemHave:
			return "✓"
		case disputes.ItemCanAssemble:
			return "◐"
		}
		return "✗"
	}
	funcs["itemStatus"] = func(status string) string {
		switch status {
		case disputes.ItemHave:
			return "have"
		case disputes.ItemCanAssemble:
			return "assembly fills it"
		}
		return "missing"
	}
	funcs["actionResult"] = actionResult
}

// actionResult says where an action stands, with the API's code when it
// was refused or failed.
func actionResult(a actions.Action) string {
	what := map[actions.Type]string{actions.StageEvidence: "Staging at Stripe", actions.SubmitEvidence: "Submission to Stripe",
		actions.AcceptDispute: "Acceptance of the dispute"}[a.Type]
	if what == "" {
		what = strings.ReplaceAll(string(a.Type), "_", " ")
	}
	switch a.Status {
	case actions.StatusSucceeded:
		return what + ": succeeded."
	case actions.StatusPendingApproval:
		return what + ": waiting for approval by a supervisor."
	case actions.StatusExecuting:
		return what + ": in progress."
	case actions.StatusRejected:
		return what + ": rejected by the approver."
	}
	s := what + ": " + string(a.Status)
	if a.Error != nil {
		s += " (" + a.Error.Code + "): " + a.Error.Message
	}
	return s
}

// workbenchPacket is GET /cases/:id/evidence/packet.pdf: the same packet as
// the API's, framable by the console's own pages only.
func (con *Console) workbenchPacket(c echo.Context) error {
	if _, ok := con.workbenchReader(c); !ok {
		return con.renderError(c, http.StatusForbidden, "Your role may not read the evidence packet.")
	}
	if con.opt.Workbench == nil {
		return con.renderError(c, http.StatusServiceUnavailable, "The dispute workbench is not available on this server.")
	}
	ctx := c.Request().Context()
	cs, err := con.opt.Cases.Get(ctx, c.Param("id"))
	if err != nil {
		return con.fail(c, err)
	}
	if cs.Kind != cases.KindDispute {
		return con.renderError(c, http.StatusNotFound, "This case is not a dispute: it has no evidence packet.")
	}
	b, err := con.opt.Workbench.Packet(ctx, cs.ID)
	if err != nil {
		return con.fail(c, err)
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", packetCSP)
	h.Set("X-Frame-Options", "SAMEORIGIN")
	name := "evidence-" + cs.ID + ".pdf"
	if cs.Links.Dispute != nil {
		name = disputes.PacketName(*cs.Links.Dispute)
	}
	h.Set("Content-Disposition", `inline; filename="`+url.PathEscape(name)+`"`)
	return c.Blob(http.StatusOK, "application/pdf", b)
}

// workbenchWriter checks disputes:work, as the API's assemble and PATCH do.
func (con *Console) workbenchWriter(c echo.Context) (auth.Principal, bool) {
	p, _ := auth.FromContext(c.Request().Context())
	return p, auth.Allowed(p.Role, auth.PermDisputesWork) && auth.Allowed(p.Role, auth.PermFactsRead)
}

// afterWorkbench answers a workbench form: 303 back to the workbench with a
// notice on success, else the workbench again with the error inline and the
// API's status.
func (con *Console) afterWorkbench(c echo.Context, err error, done string, typed map[string]string) error {
	if err == nil {
		return c.Redirect(http.StatusSeeOther, "/cases/"+url.PathEscape(c.Param("id"))+"/evidence?done="+url.QueryEscape(done))
	}
	status := http.StatusInternalServerError
	if e, ok := errs.As(err); ok {
		status = httpx.StatusOf(e.Kind)
	}
	if status >= 500 {
		con.opt.Log.Error("console: workbench write", "case", c.Param("id"), "err", err)
	}
	if e, ok := errs.As(err); ok && (e.Code == disputes.CodeNotDisputeCase) {
		return con.renderError(c, http.StatusNotFound, "This case is not a dispute: the evidence workbench is for dispute cases.")
	}
	return con.showWorkbench(c, status, err, typed)
}

// assembleEvidence is POST /cases/:id/evidence/assemble (overwrite=true
// drops the analyst's edits), through disputes.Workbench.Assemble.
func (con *Console) assembleEvidence(c echo.Context) error {
	p, ok := con.workbenchWriter(c)
	if !ok {
		return con.renderError(c, http.StatusForbidden, "Your role may not assemble dispute evidence.")
	}
	if con.opt.Workbench == nil {
		return con.renderError(c, http.StatusServiceUnavailable, "The dispute workbench is not available on this server.")
	}
	_, err := con.opt.Workbench.Assemble(c.Request().Context(), c.Param("id"), p.Actor(),
		disputes.AssembleOptions{Overwrite: c.FormValue("overwrite") == "true"})
	return con.afterWorkbench(c, err, "assembled", nil)
}

// saveEvidence is POST /cases/:id/evidence: the PATCH of the API for the
// fields whose text differs from the draft at the form's version
// (disputes.Workbench.PatchVersion). A draft that moved on since the form
// was rendered is refused (evidence_draft_changed) and the analyst's text is
// shown again, not lost.
func (con *Console) saveEvidence(c echo.Context) error {
	p, ok := con.workbenchWriter(c)
	if !ok {
		return con.renderError(c, http.StatusForbidden, "Your role may not edit dispute evidence.")
	}
	if con.opt.Workbench == nil {
		return con.renderError(c, http.StatusServiceUnavailable, "The dispute workbench is not available on this server.")
	}
	ctx := c.Request().Context()
	id := c.Param("id")
	version, err := strconv.ParseInt(c.FormValue("version"), 10, 64)
	if err != nil {
		return con.afterWorkbench(c, errs.Coded(errs.EINVALID, "invalid_version", "version must be a whole number"), "", nil)
	}
	doc, err := con.opt.Workbench.Evidence(ctx, id)
	if err != nil {
		return con.afterWorkbench(c, err, "", nil)
	}
	if doc.Draft == nil {
		return con.afterWorkbench(c, errs.Coded(errs.ENOTFOUND, disputes.CodeNoDraft, "this case has no evidence draft yet; assemble one first"), "", nil)
	}
	form, err := c.FormParams()
	if err != nil {
		return con.afterWorkbench(c, errs.Coded(errs.EINVALID, "invalid_form", "the form could not be read"), "", nil)
	}
	typed := map[string]string{}
	changed := map[string]string{}
	for key, vals := range form {
		name, ok := strings.CutPrefix(key, "field.")
		if !ok || len(vals) != 1 {
			continue
		}
		// Browsers send a textarea's line breaks as CRLF; the draft (and the
		// character count the analyst saw) has LF.
		v := strings.ReplaceAll(vals[0], "\r\n", "\n")
		typed[name] = v
		if v != doc.Draft.Fields[name] {
			changed[name] = v
		}
	}
	if len(changed) == 0 {
		if version != doc.Draft.Version {
			return con.afterWorkbench(c, errs.Coded(errs.ECONFLICT, disputes.CodeDraftChanged, "the evidence draft is at version %d, not %d", doc.Draft.Version, version), "", typed)
		}
		return con.afterWorkbench(c, nil, "unchanged", nil)
	}
	_, err = con.opt.Workbench.PatchVersion(ctx, id, version, changed, p.Actor())
	return con.afterWorkbench(c, err, "saved", typed)
}

// evidenceAction is POST /cases/:id/evidence/actions: type stage_evidence,
// submit_evidence (pinned to the draft version the page showed) or
// accept_dispute, with the form's idempotency key, through
// actions.Service.Request as the signed-in principal — exactly POST
// /api/v1/cases/:id/actions. The answer is the workbench showing the
// action's status (303 ?action=), or the refusal inline with its code.
func (con *Console) evidenceAction(c echo.Context) error {
	p, _ := auth.FromContext(c.Request().Context())
	if !auth.Allowed(p.Role, auth.PermActionsRequest) || !auth.Allowed(p.Role, auth.PermFactsRead) {
		return con.renderError(c, http.StatusForbidden, "Your role may not request actions on disputes.")
	}
	if con.opt.Actions == nil {
		return con.renderError(c, http.StatusServiceUnavailable, "Actions are not available on this server.")
	}
	t := actions.Type(c.FormValue("type"))
	var perm auth.Permission
	var req actions.Request
	switch t {
	case actions.StageEvidence, actions.SubmitEvidence:
		perm = auth.PermDisputesWork
		req = actions.Request{Type: t, Reason: c.FormValue("reason")}
		if v := c.FormValue("evidence_version"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return con.afterWorkbench(c, errs.Coded(errs.EINVALID, "invalid_params", "evidence_version must be a whole number"), "", nil)
			}
			req.Params, _ = json.Marshal(map[string]int64{"evidence_version": n})
		}
	case actions.AcceptDispute:
		perm = auth.PermDisputeAccept
		req = actions.Request{Type: t, Reason: c.FormValue("accept_reason")}
	default:
		return con.afterWorkbench(c, errs.Coded(errs.EINVALID, "unknown_action", "choose Stage, Submit or Accept"), "", nil)
	}
	if !auth.Allowed(p.Role, perm) {
		return con.renderError(c, http.StatusForbidden, fmt.Sprintf("Your role may not %s.", strings.ReplaceAll(string(t), "_", " ")))
	}
	out, err := con.opt.Actions.Request(c.Request().Context(), c.Param("id"), c.FormValue("key."+string(t)), req)
	if err != nil {
		if out.Action.ID != "" {
			// The action exists (a failed or in-doubt provider call): say which.
			c.QueryParams().Set("action", out.Action.ID)
		}
		return con.afterWorkbench(c, err, "", nil)
	}
	return c.Redirect(http.StatusSeeOther, "/cases/"+url.PathEscape(c.Param("id"))+"/evidence?action="+url.QueryEscape(out.Action.ID)+"#action-result")
}
