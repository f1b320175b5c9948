package cases

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// BulkOp is what a bulk request does to each case.
type BulkOp string

// Bulk operations. Each is exactly the single-case operation of the same
// name (Assign, Escalate, Transition, Update of tags), run once per case.
const (
	BulkAssign     BulkOp = "assign"
	BulkEscalate   BulkOp = "escalate"
	BulkTransition BulkOp = "transition"
	BulkTag        BulkOp = "tag"
)

// MaxBulkCases is the most cases one bulk request may name: enough for a
// page of a queue, small enough that one request stays short.
const MaxBulkCases = 100

// BulkRequest applies one operation to many cases.
type BulkRequest struct {
	CaseIDs []string
	Op      BulkOp
	// Versions, when a case's id is in it, pins that case's version: the
	// change is refused (version_conflict) if the case moved since.
	Versions map[string]int64
	// assign: Assignee (a name) or Unassign, and/or Team.
	Assignee *string
	Unassign bool
	// Team is the team to assign to (assign) or escalate to (escalate).
	Team *Team
	// transition: Event.
	Event string
	// Reason goes with escalate (required) and transition (optional).
	Reason string
	// tag: Tags are added to each case's tags.
	Tags []string
}

// BulkResult is the outcome for one case, in request order.
type BulkResult struct {
	CaseID string `json:"case_id"`
	OK     bool   `json:"ok"`
	// Case is the case after the change (ok only).
	Case *Case `json:"case,omitempty"`
	// Error is the API's error for this case (not ok only).
	Error *BulkError `json:"error,omitempty"`
}

// BulkError is a per-case error as the API would have answered it alone.
type BulkError struct {
	Status  int    `json:"status"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Bulk applies req.Op to each case in req.CaseIDs through the single-case
// service function, each case in its own transaction with its own version
// check, timeline entry and audit entry, so one case failing (a conflict, a
// transition its state does not allow) changes nothing for the others.
// It returns one result per case, in order. The request as a whole fails
// only when it is malformed: EINVALID (no ids, more than MaxBulkCases,
// repeated ids, unknown op, bad arguments) or EFORBIDDEN when p may not
// write cases.
func (s *Service) Bulk(ctx context.Context, p auth.Principal, req BulkRequest) ([]BulkResult, error) {
	if !auth.Allowed(p.Role, auth.PermCasesWrite) {
		return nil, errs.Coded(errs.EFORBIDDEN, "forbidden", "role %q may not %s", p.Role, auth.PermCasesWrite)
	}
	if err := req.validate(); err != nil {
		return nil, err
	}
	out := make([]BulkResult, 0, len(req.CaseIDs))
	for _, id := range req.CaseIDs {
		var version *int64
		if v, ok := req.Versions[id]; ok {
			version = &v
		}
		cs, err := s.bulkOne(ctx, p, req, id, version)
		r := BulkResult{CaseID: id}
		if err != nil {
			e, ok := errs.As(err)
			if !ok || e.Kind == errs.EINTERNAL {
				s.log.Error("cases: bulk", "op", req.Op, "case_id", id, "err", err)
				r.Error = &BulkError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; nothing was changed on this case"}
			} else {
				r.Error = &BulkError{Status: httpx.StatusOf(e.Kind), Code: e.Code, Message: e.Message}
			}
		} else {
			cs = forViewer(p, cs)
			r.OK, r.Case = true, &cs
		}
		out = append(out, r)
	}
	return out, nil
}

func (req BulkRequest) validate() error {
	switch n := len(req.CaseIDs); {
	case n == 0:
		return errs.Coded(errs.EINVALID, "invalid_case_ids", "case_ids must name at least one case")
	case n > MaxBulkCases:
		return errs.Coded(errs.EINVALID, "too_many_cases", "case_ids may name at most %d cases (got %d)", MaxBulkCases, n)
	}
	seen := make(map[string]bool, len(req.CaseIDs))
	for _, id := range req.CaseIDs {
		if seen[id] {
			return errs.Coded(errs.EINVALID, "invalid_case_ids", "case %s is named twice", id)
		}
		seen[id] = true
	}
	switch req.Op {
	case BulkAssign:
		if req.Assignee == nil && !req.Unassign && req.Team == nil {
			return errs.Coded(errs.EINVALID, "invalid_request", "assign needs an assignee (or null to unassign) and/or a team")
		}
		if req.Assignee != nil {
			if _, err := cleanName("assignee", *req.Assignee, maxName); err != nil {
				return err
			}
		}
	case BulkEscalate:
		// Checked once here rather than failing every row alike.
		if req.Team == nil || !slices.Contains(EscalationTeams(), *req.Team) {
			return errs.Coded(errs.EINVALID, "invalid_team", "escalate needs a team, one of %s", joinStrings(EscalationTeams()))
		}
		if _, err := cleanText("reason", req.Reason, maxReason, true); err != nil {
			return err
		}
	case BulkTransition:
		if strings.TrimSpace(req.Event) == "" {
			return errs.Coded(errs.EINVALID, "invalid_event", "transition needs an event")
		}
	case BulkTag:
		if len(req.Tags) == 0 {
			return errs.Coded(errs.EINVALID, "invalid_tags", "tag needs at least one tag")
		}
		if _, err := cleanTags(req.Tags); err != nil {
			return err
		}
	default:
		return errs.Coded(errs.EINVALID, "invalid_op", "op must be assign, escalate, transition or tag (got %q)", req.Op)
	}
	return nil
}

// bulkOne runs the single-case operation on case id.
func (s *Service) bulkOne(ctx context.Context, p auth.Principal, req BulkRequest, id string, version *int64) (Case, error) {
	switch req.Op {
	case BulkAssign:
		return s.Assign(ctx, p, id, AssignRequest{Assignee: req.Assignee, Unassign: req.Unassign, Team: req.Team, Version: version})
	case BulkEscalate:
		return s.escalate(ctx, p, id, *req.Team, req.Reason, version)
	case BulkTransition:
		return s.Transition(ctx, p, id, TransitionRequest{Event: req.Event, Reason: req.Reason, Version: version})
	case BulkTag:
		cur, err := s.Get(ctx, id)
		if err != nil {
			return Case{}, err
		}
		if version == nil {
			version = &cur.Version // adding to the tags read here: refuse if they changed in between
		}
		tags := slices.Clone(cur.Tags)
		tags = append(tags, req.Tags...)
		return s.Update(ctx, p, id, UpdateRequest{Tags: &tags, Version: version})
	}
	return Case{}, errs.Coded(errs.EINVALID, "invalid_op", "unknown op %q", req.Op)
}

// bulkRequestBody is the body of POST /cases/bulk.
type bulkRequestBody struct {
	CaseIDs  []string         `json:"case_ids"`
	Op       string           `json:"op"`
	Versions map[string]int64 `json:"versions"`
	Assignee optString        `json:"assignee"`
	Team     *string          `json:"team"`
	Event    string           `json:"event"`
	Reason   string           `json:"reason"`
	Tags     []string         `json:"tags"`
}

func (s *Service) handleBulk(c echo.Context) error {
	p, err := principal(c)
	if err != nil {
		return err
	}
	var body bulkRequestBody
	if err := httpx.Bind(c, &body); err != nil {
		return err
	}
	req := BulkRequest{CaseIDs: body.CaseIDs, Op: BulkOp(body.Op), Versions: body.Versions, Assignee: body.Assignee.Value,
		Unassign: body.Assignee.Set && body.Assignee.Value == nil, Event: body.Event, Reason: body.Reason, Tags: body.Tags}
	if body.Team != nil {
		t, err := ParseTeam(*body.Team)
		if err != nil {
			return err
		}
		req.Team = &t
	}
	results, err := s.Bulk(c.Request().Context(), p, req)
	if err != nil {
		return err
	}
	ok := 0
	for _, r := range results {
		if r.OK {
			ok++
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"data": results, "ok": ok, "failed": len(results) - ok})
}
