package actions

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/events"
)

// Service requests, approves and executes actions.
type Service struct {
	db       *db.DB
	clock    clock.Clock
	log      *slog.Logger
	provider billing.Provider
	fetcher  billing.Fetcher
	mirror   func(tx *gorm.DB) Mirror
	cases    Cases
	audit    *audit.Log
	policy   Policy
	evidence Evidence
	metrics  *actionMetrics
	// callBudget bounds one provider call, retries included.
	callBudget time.Duration
}

// DefaultCallBudget is CallBudget of the default Stripe settings (20 s a
// request, two retries).
var DefaultCallBudget = CallBudget(20*time.Second, 2)

// maxRetryBackoff is the longest stripe-go sleeps between two tries.
const maxRetryBackoff = 5 * time.Second

// CallBudget is how long one provider call may take when each request may
// take timeout and the client retries it up to retries times (stripe-go's
// network retries, same idempotency key), sleeping at most 5 s between
// tries: timeout × (1 + retries) + retries × 5 s.
func CallBudget(timeout time.Duration, retries int) time.Duration {
	retries = max(retries, 0)
	return timeout*time.Duration(1+retries) + maxRetryBackoff*time.Duration(retries)
}

// Lease is how long one execution of an action of type t owns it before
// another execution (a client's retry, another replica's resumer) may take
// it over: the call's budget plus a margin for the writes around it.
func (s *Service) Lease(t Type) time.Duration { return s.leaseFor(t) }

// Config wires a Service.
type Config struct {
	DB       *db.DB
	Clock    clock.Clock
	Log      *slog.Logger
	Provider billing.Provider // nil: every action is refused with 503 (no provider configured)
	// Fetcher, when set, supplies objects the mirror lacks (usually the
	// same Stripe client as Provider).
	Fetcher billing.Fetcher
	Mirror  func(tx *gorm.DB) Mirror
	Cases   Cases
	Audit   *audit.Log
	Policy  Policy
	// Evidence is the dispute workbench (*disputes.Workbench); nil:
	// submit_evidence and stage_evidence are refused with 503
	// evidence_unavailable.
	Evidence Evidence
	// CallBudget is how long one provider call may take, the client's
	// retries included (see CallBudget); 0 means DefaultCallBudget. An
	// execution's lease outlasts it (see leaseFor).
	CallBudget time.Duration
}

// NewService returns the action service.
func NewService(c Config) *Service {
	s := &Service{db: c.DB, clock: c.Clock, log: c.Log, provider: c.Provider, fetcher: c.Fetcher, mirror: c.Mirror, cases: c.Cases, audit: c.Audit, policy: c.Policy, evidence: c.Evidence,
		callBudget: c.CallBudget}
	if s.callBudget <= 0 {
		s.callBudget = DefaultCallBudget
	}
	s.metrics = newActionMetrics(s)
	return s
}

// Policy returns the policy in force.
func (s *Service) Policy() Policy { return s.policy }

// Request is a client's request for an action on a case.
type Request struct {
	Type   Type            `json:"type"`
	Params json.RawMessage `json:"params"`
	Reason string          `json:"reason"`
}

func newActionID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "act_" + strings.ToLower(strings.TrimRight(hexTime(), "")) + hex.EncodeToString(b)
}

// hexTime makes ids sort by creation time.
func hexTime() string { return fmt.Sprintf("%011x", time.Now().UnixMilli()) }

func hashRequest(caseID string, r Request) string {
	var params any
	_ = json.Unmarshal(r.Params, &params) // canonical form: key order and spacing do not matter
	b, _ := json.Marshal(struct {
		Case   string
		Type   Type
		Params any
		Reason string
	}{caseID, r.Type, params, strings.TrimSpace(r.Reason)})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Outcome is the answer to a request: the action, and whether this call
// replayed an earlier one with the same Idempotency-Key.
type Outcome struct {
	Action   Action
	Replayed bool
}

// Request checks policy and records the action, then executes it unless it
// must wait for approval. The same clientKey from the same person returns
// the first action and executes nothing twice. Errors: EINVALID (bad
// request), ENOTFOUND (case), EFORBIDDEN (role), ECONFLICT (policy refusal,
// e.g. a disputed charge), EUNPROCESSABLE (amount over what is left, same
// key with another request), EUNAVAILABLE (no provider configured).
func (s *Service) Request(ctx context.Context, caseID, clientKey string, r Request) (Outcome, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return Outcome{}, errs.New(errs.EUNAUTHORIZED, "authentication required")
	}
	clientKey = strings.TrimSpace(clientKey)
	if clientKey == "" || len(clientKey) > 255 {
		return Outcome{}, errs.Coded(errs.EINVALID, "idempotency_key_required", "an Idempotency-Key header (1–255 characters) is required for actions")
	}
	if s.provider == nil {
		return Outcome{}, errs.Coded(errs.EUNAVAILABLE, "provider_not_configured", "no billing provider is configured (RECOURSE_STRIPE_API_KEY)")
	}
	// A request that names no known action is refused as such before the
	// case's state is looked at: it could never be done, open case or not.
	if r.Type == "" {
		return Outcome{}, errs.Coded(errs.EINVALID, "type_required", "type is required: one of %v", Types())
	}
	if !slices.Contains(Types(), r.Type) {
		return Outcome{}, errs.Coded(errs.EINVALID, "unknown_action", "unknown action type %q: one of %v", r.Type, Types())
	}
	hash := hashRequest(caseID, r)
	if prev, found, err := s.byClientKey(ctx, s.db.Gorm, p.Name, clientKey); err != nil {
		return Outcome{}, err
	} else if found {
		return s.replay(ctx, p, prev, clientKey, hash)
	}

	var rec row
	var prev stored
	var found bool
	err := s.db.Transact(ctx, func(tx *gorm.DB) error {
		c, err := s.cases.Lookup(ctx, tx, caseID)
		if err != nil {
			return err
		}
		// The case's row lock serialises requests with one key (one key,
		// one case): a repeat that waited here for the first finds its
		// action now and replays it. Inserting instead would wait on the
		// key's unique index for the first action's execution, which holds
		// that action's row and waits for this case: a deadlock.
		if prev, found, err = s.byClientKey(ctx, tx, p.Name, clientKey); err != nil || found {
			return err
		}
		if err := admitRule(p, c, r.Type, clientKey, p.ActorKind() == auth.ActorSystem); err != nil {
			return err
		}
		pl, err := s.plan(ctx, tx, p, c, r, "")
		if err != nil {
			return err
		}
		now := s.clock.Now()
		id := newActionID()
		paramsJSON, _ := json.Marshal(pl.params)
		status := StatusExecuting
		var reasons *string
		if len(pl.approval) > 0 {
			status = StatusPendingApproval
			b, _ := json.Marshal(pl.approval)
			reasons = ptr(string(b))
		}
		rec = row{ID: id, CaseID: c.ID, Type: string(r.Type), Params: string(paramsJSON), Reason: strings.TrimSpace(r.Reason),
			Status: string(status), RequestedBy: p.Name, RequestedByUserID: userIDOf(p), RequestedRole: string(p.Role), ClientKey: clientKey, RequestHash: hash,
			ProviderKey: "recourse_" + id, ApprovalReasons: reasons, SubjectID: ptr(pl.subject), CreatedAt: now, UpdatedAt: now}
		if pl.amount > 0 {
			rec.Amount, rec.Currency = ptr(pl.amount), ptr(pl.currency)
		}
		if err := tx.WithContext(ctx).Create(&rec).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return errs.Coded(errs.ECONFLICT, "idempotency_key_in_flight", "a request with this Idempotency-Key is being processed; retry shortly")
			}
			return fmt.Errorf("record action: %w", err)
		}
		summary := fmt.Sprintf("%s requested %s", p.Name, pl.summary)
		if r.Reason != "" {
			summary += ": " + strings.TrimSpace(r.Reason)
		}
		if status == StatusPendingApproval {
			summary += " — waiting for a supervisor's approval (" + strings.Join(pl.approval, "; ") + ")"
		}
		if err := s.cases.Record(ctx, tx, c.ID, p.Name, "action_requested", summary, ""); err != nil {
			return err
		}
		if status == StatusPendingApproval {
			if err := s.cases.Announce(ctx, tx, events.TypeApprovalRequested, "approval-requested/"+id, c.ID, string(r.Type), rec.Amount, rec.Currency); err != nil {
				return err
			}
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "action.request." + string(r.Type), CaseID: c.ID,
			ObjectType: "action", ObjectID: id, After: audit.Marshal(rec.action()), Detail: summary})
	})
	if err != nil {
		if errs.Is(err, errs.ECONFLICT) || errs.Is(err, errs.EUNPROCESSABLE) || errs.Is(err, errs.EFORBIDDEN) {
			s.auditRefusal(ctx, caseID, r, err)
		}
		return Outcome{}, err
	}
	if found {
		return s.replay(ctx, p, prev, clientKey, hash)
	}
	a := rec.action()
	if a.Status == StatusPendingApproval {
		s.metrics.outcome(a.Type, OutcomePendingApproval)
	}
	if a.Status == StatusExecuting {
		a, err = s.execute(ctx, a)
	}
	return Outcome{Action: a}, err
}

func (s *Service) auditRefusal(ctx context.Context, caseID string, r Request, cause error) {
	e, _ := errs.As(cause)
	detail := cause.Error()
	if e != nil {
		detail = e.Code + ": " + e.Message
	}
	if err := s.audit.Record(context.WithoutCancel(ctx), nil, audit.Entry{Action: "action.refused." + string(r.Type), CaseID: caseID, Detail: detail}); err != nil {
		s.log.Warn("audit of refused action failed", "err", err)
	}
}

type stored struct {
	action Action
	hash   string
}

// replay answers a request whose key already has an action: that action
// (resumed if it is stuck), or a refusal when the key belongs to someone
// else or came with another request.
func (s *Service) replay(ctx context.Context, p auth.Principal, prev stored, clientKey, hash string) (Outcome, error) {
	if a := prev.action.RequestedByUserID; a != nil && p.UserID != 0 && *a != p.UserID {
		// Keys are kept per requester name; another person of the same
		// name must not see, or replay, this person's action.
		return Outcome{}, errs.Coded(errs.ECONFLICT, "idempotency_key_in_use", "Idempotency-Key %q is in use; choose another", clientKey)
	}
	if prev.hash != hash {
		return Outcome{}, errs.Coded(errs.EUNPROCESSABLE, "idempotency_key_reused",
			"Idempotency-Key %q was already used for a different request (action %s)", clientKey, prev.action.ID)
	}
	a, err := s.resumeIfStuck(ctx, prev.action)
	return Outcome{Action: a, Replayed: true}, err
}

// byClientKey finds actor's action with key, on g (the pool, or a
// transaction).
func (s *Service) byClientKey(ctx context.Context, g *gorm.DB, actor, key string) (stored, bool, error) {
	var r row
	err := g.WithContext(ctx).Where("requested_by = ? AND client_key = ?", actor, key).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return stored{}, false, nil
	}
	if err != nil {
		return stored{}, false, fmt.Errorf("look up idempotency key: %w", err)
	}
	return stored{action: r.action(), hash: r.RequestHash}, true, nil
}

// Get returns one action. ENOTFOUND if unknown.
func (s *Service) Get(ctx context.Context, id string) (Action, error) {
	var r row
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Action{}, errs.NotFound("no action %q", id)
	}
	if err != nil {
		return Action{}, fmt.Errorf("get action %s: %w", id, err)
	}
	// An action is in scope with its case: out of the caller's scope it
	// answers like a missing id (README "Scoping").
	if _, err := s.cases.Lookup(ctx, s.db.WithContext(ctx), r.CaseID); errs.Is(err, errs.ENOTFOUND) {
		return Action{}, errs.NotFound("no action %q", id)
	} else if err != nil {
		return Action{}, err
	}
	return r.action(), nil
}

// ForCase lists a case's actions, oldest first. ENOTFOUND if there is no
// such case.
func (s *Service) ForCase(ctx context.Context, caseID string) ([]Action, error) {
	// Two plain reads, no transaction: a read must not take SQLite's
	// write lock.
	if _, err := s.cases.Lookup(ctx, s.db.WithContext(ctx), caseID); err != nil {
		return nil, err
	}
	var rows []row
	if err := s.db.WithContext(ctx).Where("case_id = ?", caseID).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list actions of case %s: %w", caseID, err)
	}
	out := make([]Action, len(rows))
	for i, r := range rows {
		out[i] = r.action()
	}
	return out, nil
}

// PendingApproval lists up to limit actions waiting for a supervisor's
// decision, oldest first (the approvals inbox).
func (s *Service) PendingApproval(ctx context.Context, limit int) ([]Action, error) {
	var rows []row
	q := s.db.WithContext(ctx).Where("status = ?", string(StatusPendingApproval))
	if cond, args := auth.ScopeOf(ctx).CaseSQL("scope_c"); cond != "" {
		q = q.Where("case_id IN (SELECT scope_c.id FROM cases scope_c WHERE "+cond+")", args...)
	}
	if err := q.Order("created_at, id").Limit(limit).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list actions waiting for approval: %w", err)
	}
	out := make([]Action, len(rows))
	for i, r := range rows {
		out[i] = r.action()
	}
	return out, nil
}

// Decide approves or rejects a pending action. The decider must hold
// actions:approve and must not be the requester (four eyes). An approval
// evaluates policy again against the mirror as it is now (see recheck): if
// a rule refuses, the action ends refused, nothing reaches the provider,
// and Decide returns the action with the rule's error (ECONFLICT, e.g.
// charge_disputed; EUNPROCESSABLE, e.g. amount_exceeds_refundable). Errors:
// ENOTFOUND, EFORBIDDEN, ECONFLICT (not pending), EINVALID (no reason).
func (s *Service) Decide(ctx context.Context, id string, approve bool, note string) (Action, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return Action{}, errs.New(errs.EUNAUTHORIZED, "authentication required")
	}
	note = strings.TrimSpace(note)
	if note == "" {
		return Action{}, errs.Coded(errs.EINVALID, "reason_required", "a reason is required to approve or reject")
	}
	var out row
	var refusal error
	err := s.db.Transact(ctx, func(tx *gorm.DB) error {
		refusal = nil
		var r row
		if err := tx.WithContext(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return errs.NotFound("no action %q", id)
			}
			return err
		}
		if _, err := s.cases.Lookup(ctx, tx, r.CaseID); errs.Is(err, errs.ENOTFOUND) {
			return errs.NotFound("no action %q", id) // out of the decider's scope
		} else if err != nil {
			return err
		}
		if samePerson(r, p) {
			return errs.Coded(errs.EFORBIDDEN, "four_eyes", "you requested action %s; another supervisor must decide it", id)
		}
		if Status(r.Status) != StatusPendingApproval {
			return errs.Coded(errs.ECONFLICT, "not_pending", "action %s is %s, not pending approval", id, r.Status).
				WithDetails(map[string]any{"status": r.Status})
		}
		before := r.action()
		next, verb := StatusExecuting, "approved"
		if !approve {
			next, verb = StatusRejected, "rejected"
		}
		now := s.clock.Now()
		if approve {
			if _, err := s.recheck(ctx, tx, r); err != nil {
				e, ok := asRefusal(err)
				if !ok {
					return err
				}
				refusal = err
				lead := fmt.Sprintf("%s approved %s (%s): %s. ", p.Name, describe(before), id, note)
				out, err = s.refuse(ctx, tx, r, StatusPendingApproval, p.Name, lead, e,
					map[string]any{"decided_by": p.Name, "decided_at": now, "decision_note": note})
				return err
			}
		}
		res := tx.WithContext(ctx).Model(&row{}).Where("id = ? AND status = ?", id, string(StatusPendingApproval)).
			Updates(map[string]any{"status": string(next), "decided_by": p.Name, "decided_by_user_id": userIDOf(p), "decided_at": now, "decision_note": note, "updated_at": now})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return errs.Coded(errs.ECONFLICT, "not_pending", "action %s was decided concurrently", id)
		}
		if err := tx.WithContext(ctx).Where("id = ?", id).Take(&out).Error; err != nil {
			return err
		}
		summary := fmt.Sprintf("%s %s %s (%s): %s", p.Name, verb, describe(out.action()), id, note)
		if err := s.cases.Record(ctx, tx, r.CaseID, p.Name, "action_"+verb, summary, ""); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "action." + verb, CaseID: r.CaseID, ObjectType: "action", ObjectID: id,
			Before: audit.Marshal(before), After: audit.Marshal(out.action()), Detail: note})
	})
	if err != nil {
		return Action{}, err
	}
	a := out.action()
	s.metrics.decision(a.Type, approve)
	if refusal != nil {
		s.metrics.outcome(a.Type, OutcomeRefused)
		return a, refusal
	}
	if a.Status == StatusRejected {
		s.metrics.outcome(a.Type, OutcomeRejected)
	}
	if a.Status == StatusExecuting {
		return s.execute(ctx, a)
	}
	return a, nil
}

// userIDOf is the person behind p, if p is one.
func userIDOf(p auth.Principal) *int64 {
	if p.UserID == 0 {
		return nil
	}
	id := p.UserID
	return &id
}

// samePerson reports whether p is the person who requested r (four eyes):
// compared by user, so a second token of the same person is still them.
// Only an action recorded without a user falls back to the name.
func samePerson(r row, p auth.Principal) bool {
	if r.RequestedByUserID != nil && p.UserID != 0 {
		return *r.RequestedByUserID == p.UserID
	}
	return r.RequestedBy == p.Name
}

// resumeIfStuck re-executes an action left executing by a crash (or an
// unreachable provider) once its lease has run out.
func (s *Service) resumeIfStuck(ctx context.Context, a Action) (Action, error) {
	if a.Status != StatusExecuting {
		return a, nil
	}
	return s.execute(ctx, a)
}

// ResumeStuck re-executes every action still executing after the policy's
// stuck_after, with its original idempotency key, and returns how many it
// tried.
func (s *Service) ResumeStuck(ctx context.Context) (int, error) {
	var rows []row
	cutoff := s.clock.Now().Add(-s.policy.StuckAfter.D())
	if err := s.db.WithContext(ctx).Where("status = ? AND updated_at < ?", string(StatusExecuting), cutoff).Order("updated_at").Limit(50).Find(&rows).Error; err != nil {
		return 0, fmt.Errorf("find stuck actions: %w", err)
	}
	for _, r := range rows {
		_, err := s.execute(ctx, r.action())
		if _, refused := asRefusal(err); err != nil && !refused && !errs.Is(err, errs.EUNAVAILABLE) && !errs.Is(err, errs.ERATELIMIT) {
			s.log.Warn("resume stuck action", "action_id", r.ID, "err", err)
		}
	}
	return len(rows), nil
}

// Run resumes stuck actions every interval until ctx ends.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.ResumeStuck(ctx); err != nil {
				s.log.Warn("resume stuck actions", "err", err)
			}
		}
	}
}

// leaseMargin is how much longer than its provider call an execution owns
// an action: the database writes before and after the call.
const leaseMargin = 10 * time.Second

// evidenceBudget bounds sending an evidence package: several uploads and
// the dispute update.
const evidenceBudget = 120 * time.Second

// leaseFor is how long one execution attempt of an action of type t owns
// it: longer than the provider call can take (its context ends then), so
// another replica's resumer never sends the same call while the first is
// still waiting for Stripe or retrying.
func (s *Service) leaseFor(t Type) time.Duration {
	return s.callTimeout(t) + leaseMargin
}

// callTimeout bounds the provider call of an action of type t.
func (s *Service) callTimeout(t Type) time.Duration {
	if isEvidence(t) {
		return max(evidenceBudget, s.callBudget)
	}
	return s.callBudget
}

// leased is the outcome of taking an action's lease.
type leased struct {
	leased  bool  // this execution holds the lease
	refused row   // the action as refused, when refusal is set
	refusal error // the rule that refused it on re-check
	parked  row   // the action as sent back for approval, when waiting
	waiting bool  // policy now wants approval first; nothing is sent
}

// lease takes the action's lease and, in the same transaction, evaluates
// policy again right before the provider call. A second or later attempt
// may already have reached the provider: for it only the refusals in
// standsInDoubt stop the call.
func (s *Service) lease(ctx context.Context, id string, t Type) (leased, error) {
	var l leased
	err := s.db.Transact(ctx, func(tx *gorm.DB) error {
		l = leased{}
		now := s.clock.Now()
		res := tx.WithContext(ctx).Model(&row{}).
			Where("id = ? AND status = ? AND (lease_until IS NULL OR lease_until < ?)", id, string(StatusExecuting), now).
			Updates(map[string]any{"lease_until": now.Add(s.leaseFor(t)), "attempts": gorm.Expr("attempts + 1"), "updated_at": now})
		if res.Error != nil {
			return fmt.Errorf("lease action %s: %w", id, res.Error)
		}
		if res.RowsAffected == 0 {
			return nil
		}
		l.leased = true
		var r row
		if err := tx.WithContext(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
			return fmt.Errorf("lease action %s: %w", id, err)
		}
		pl, err := s.recheck(ctx, tx, r)
		if err == nil {
			l.parked, l.waiting, err = s.needsApprovalNow(ctx, tx, r, pl)
			return err
		}
		e, ok := asRefusal(err)
		if !ok {
			return fmt.Errorf("re-check policy for action %s: %w", id, err)
		}
		if r.Attempts > 1 && !standsInDoubt[e.Code] {
			s.log.Info("re-check refusal may be the action's own effect; completing it with its idempotency key",
				"action_id", id, "code", e.Code)
			return nil
		}
		l.refusal = err
		l.refused, err = s.refuse(ctx, tx, r, StatusExecuting, cases.SystemActor, "", e, nil)
		return err
	})
	if err != nil {
		return leased{}, err
	}
	if l.refusal != nil {
		s.metrics.outcome(Type(l.refused.Type), OutcomeRefused)
	}
	if l.waiting {
		s.metrics.outcome(Type(l.parked.Type), OutcomePendingApproval)
	}
	return l, nil
}

// execute calls the provider for an executing action and records the
// outcome. Only the holder of the action's lease calls the provider, always
// with the action's own idempotency key, so concurrent or repeated
// executions cannot act twice. Taking the lease re-checks policy (see
// recheck); a refusal ends the action refused and is returned.
func (s *Service) execute(ctx context.Context, a Action) (Action, error) {
	l, err := s.lease(ctx, a.ID, a.Type)
	if err != nil {
		return a, err
	}
	if !l.leased {
		// Someone else is executing it, or it finished meanwhile.
		return s.Get(ctx, a.ID)
	}
	if l.refusal != nil {
		return l.refused.action(), l.refusal
	}
	if l.waiting {
		return l.parked.action(), nil
	}
	var params Params
	if err := json.Unmarshal(a.Params, &params); err != nil {
		return a, fmt.Errorf("action %s params: %w", a.ID, err)
	}
	key := billing.Key{IdempotencyKey: a.ProviderKey, ActionID: a.ID, CaseID: a.CaseID}
	var result billing.Result
	var callErr error
	var fileIDs map[string]string
	if isEvidence(a.Type) {
		// Read the package again: what is sent is what was checked.
		pkg, err := s.evidenceToSend(ctx, a, params)
		if err != nil {
			return s.refuseBeforeSend(ctx, a, err)
		}
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.callTimeout(a.Type))
		start := time.Now()
		result, fileIDs, callErr = s.sendEvidence(pctx, params.Dispute, pkg, a.Type == SubmitEvidence, key)
		s.metrics.providerCall(a.Type, start)
		cancel()
	} else {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.callTimeout(a.Type))
		start := time.Now()
		result, callErr = s.call(pctx, a.Type, params, key)
		s.metrics.providerCall(a.Type, start)
		cancel()
	}

	var pe *billing.ProviderError
	if callErr != nil && errors.As(callErr, &pe) && pe.Retryable {
		// Outcome unknown: stay executing; a retry (the client's, or the
		// resumer's) uses the same key, so the provider acts at most once.
		msg := pe.Message
		_ = s.db.WithContext(context.WithoutCancel(ctx)).Model(&row{}).Where("id = ?", a.ID).
			Updates(map[string]any{"error_code": "provider_" + pe.Type, "error_message": msg, "lease_until": nil, "updated_at": s.clock.Now()}).Error
		s.auditCall(ctx, a, "retryable_error", pe.RequestID, msg)
		s.metrics.outcome(a.Type, OutcomeInDoubt)
		cur, _ := s.Get(ctx, a.ID)
		return cur, billing.AsCoded(callErr)
	}
	var out row
	var recorded bool
	err = s.db.Transact(context.WithoutCancel(ctx), func(tx *gorm.DB) error {
		recorded = false
		now := s.clock.Now()
		upd := map[string]any{"lease_until": nil, "updated_at": now, "executed_at": now}
		var summary, entryType string
		if callErr != nil {
			code, msg, reqID := "provider_error", callErr.Error(), ""
			if pe != nil {
				code, msg, reqID = "provider_"+pe.Type, pe.Message, pe.RequestID
				if pe.Code != "" {
					code = pe.Code
				}
			}
			upd["status"], upd["error_code"], upd["error_message"] = string(StatusFailed), code, msg
			if reqID != "" {
				upd["provider_request_id"] = reqID
			}
			entryType = "action_failed"
			summary = fmt.Sprintf("%s failed at the provider: %s", capitalize(describe(a)), msg)
		} else {
			resJSON, _ := json.Marshal(result)
			upd["status"], upd["provider_object_id"], upd["provider_request_id"], upd["provider_status"], upd["result"] =
				string(StatusSucceeded), result.ObjectID, nullable(result.RequestID), nullable(result.Status), string(resJSON)
			upd["error_code"], upd["error_message"] = nil, nil
			entryType = "action_succeeded"
			summary = fmt.Sprintf("%s done: %s", capitalize(describe(a)), result.ObjectID)
			if result.Status != "" {
				summary += " (" + result.Status + ")"
			}
		}
		r := tx.WithContext(ctx).Model(&row{}).Where("id = ? AND status = ?", a.ID, string(StatusExecuting)).Updates(upd)
		if r.Error != nil {
			return r.Error
		}
		if err := tx.WithContext(ctx).Where("id = ?", a.ID).Take(&out).Error; err != nil {
			return err
		}
		if r.RowsAffected == 0 {
			return nil // finished by another execution meanwhile
		}
		recorded = true
		if err := s.cases.Record(ctx, tx, a.CaseID, cases.SystemActor, entryType, summary, ""); err != nil {
			return err
		}
		if callErr != nil {
			if err := s.cases.Announce(ctx, tx, events.TypeActionFailed, "action-failed/"+a.ID, a.CaseID, string(a.Type)+": "+upd["error_code"].(string), a.Amount, a.Currency); err != nil {
				return err
			}
		}
		if callErr == nil && isEvidence(a.Type) {
			if err := s.evidence.Sent(ctx, tx, a.CaseID, params.EvidenceVersion, a.Type == SubmitEvidence, a.ID, fileIDs); err != nil {
				return fmt.Errorf("record evidence of case %s as sent: %w", a.CaseID, err)
			}
		}
		if err := s.moveCase(ctx, tx, a, callErr == nil); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "action.provider_call." + string(a.Type), CaseID: a.CaseID, ObjectType: "action",
			ObjectID: a.ID, Before: audit.Marshal(a), After: audit.Marshal(out.action()), ProviderRequestID: deref(out.ProviderRequestID), Detail: summary})
	})
	if err != nil {
		return a, fmt.Errorf("record outcome of action %s (the provider call is done; a retry with the same key is safe): %w", a.ID, err)
	}
	final := out.action()
	if recorded {
		s.metrics.outcome(final.Type, string(final.Status))
	}
	if final.Status == StatusSucceeded && a.Type == CancelSubscription && params.ProratedRefund > 0 {
		s.requestProratedRefund(ctx, final, params)
	}
	if final.Status == StatusFailed {
		return final, billing.AsCoded(callErr)
	}
	return final, nil
}

func (s *Service) auditCall(ctx context.Context, a Action, outcome, reqID, msg string) {
	if err := s.audit.Record(context.WithoutCancel(ctx), nil, audit.Entry{Action: "action.provider_call." + string(a.Type) + "." + outcome,
		CaseID: a.CaseID, ObjectType: "action", ObjectID: a.ID, ProviderRequestID: reqID, Detail: msg}); err != nil {
		s.log.Warn("audit provider call", "err", err)
	}
}

// requestProratedRefund files the refund that follows a cancellation with a
// prorated refund; it goes through the refund rules like any other.
func (s *Service) requestProratedRefund(ctx context.Context, parent Action, p Params) {
	body, _ := json.Marshal(map[string]any{"amount": p.ProratedRefund, "charge": p.RefundCharge, "refund_reason": "requested_by_customer"})
	requester := auth.Principal{Name: parent.RequestedBy, Role: auth.Role(parent.RequestedRole)}
	if parent.RequestedByUserID != nil {
		requester.UserID = *parent.RequestedByUserID
	}
	actx := auth.WithPrincipal(context.WithoutCancel(ctx), requester)
	_, err := s.Request(actx, parent.CaseID, parent.ID+"/prorated-refund", Request{Type: Refund, Params: body,
		Reason: "prorated refund after cancellation (" + parent.ID + ")"})
	if err != nil {
		s.log.Warn("prorated refund after cancellation was not filed", "action_id", parent.ID, "err", err)
		_ = s.db.Transact(context.WithoutCancel(ctx), func(tx *gorm.DB) error {
			return s.cases.Record(ctx, tx, parent.CaseID, cases.SystemActor, "action_failed", "Prorated refund after cancellation was not filed: "+err.Error(), "")
		})
	}
}

// call makes the provider call for an action.
func (s *Service) call(ctx context.Context, t Type, p Params, key billing.Key) (billing.Result, error) {
	switch t {
	case Refund:
		return s.provider.Refund(ctx, billing.RefundRequest{Key: key, ChargeID: p.Charge, PaymentIntentID: p.PaymentIntent, Amount: p.Amount, Reason: p.RefundReason, Note: p.Comment})
	case CancelSubscription:
		return s.provider.CancelSubscription(ctx, billing.CancelRequest{Key: key, SubscriptionID: p.Subscription, AtPeriodEnd: p.Mode == "period_end", Feedback: p.Feedback, Comment: p.Comment})
	case ReactivateSubscription:
		return s.provider.SetCancelAtPeriodEnd(ctx, p.Subscription, false, key)
	case ExtendTrial:
		return s.provider.ExtendTrial(ctx, p.Subscription, *p.TrialEnd, key)
	case PauseCollection:
		return s.provider.PauseCollection(ctx, p.Subscription, p.Behavior, p.ResumesAt, key)
	case ResumeCollection:
		return s.provider.ResumeCollection(ctx, p.Subscription, key)
	case RetryPayment:
		return s.provider.PayInvoice(ctx, p.Invoice, key)
	case ApplyCredit:
		return s.provider.CreditBalance(ctx, billing.CreditRequest{Key: key, CustomerID: p.Customer, Amount: p.Amount, Currency: p.Currency, Description: p.Description})
	case AcceptDispute:
		return s.provider.CloseDispute(ctx, p.Dispute, key)
	case SubmitEvidence, StageEvidence:
		return billing.Result{}, errNoEvidence
	}
	return billing.Result{}, &billing.ProviderError{Type: "invalid_request_error", Message: "unknown action type " + string(t)}
}

// lockSubject serialises policy checks on one provider object (on
// PostgreSQL; SQLite has one writer already), so two concurrent refunds
// cannot both pass the "amount left" check.
func lockSubject(ctx context.Context, d *db.DB, tx *gorm.DB, subject string) error {
	if subject == "" {
		return nil
	}
	return d.Dialect.AdvisoryXactLock(ctx, tx, db.LockActionSubject, subject)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
