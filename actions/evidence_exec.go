package actions

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/events"
)

// FilePurpose is the Files API purpose of evidence files.
const FilePurpose = "dispute_evidence"

// isEvidence reports whether t sends dispute evidence.
func isEvidence(t Type) bool { return t == SubmitEvidence || t == StageEvidence }

// evidenceToSend reads the case's package again, right before the provider
// is called, and returns it only if it is the package the action pinned
// (version and digest); otherwise a refusal (evidence_changed,
// no_evidence_draft). A plain read: the workbench's own writes are
// transactions, so the package read is one committed version.
func (s *Service) evidenceToSend(ctx context.Context, a Action, p Params) (disputes.Package, error) {
	if s.evidence == nil {
		return disputes.Package{}, errs.Coded(errs.EUNAVAILABLE, "evidence_unavailable", "the dispute evidence workbench is not configured; evidence cannot be sent")
	}
	pkg, err := s.evidence.Package(ctx, s.db.WithContext(ctx), a.CaseID)
	if errs.Is(err, errs.ENOTFOUND) {
		return pkg, errs.Coded(errs.ECONFLICT, "no_evidence_draft", "case %s has no evidence draft any more", a.CaseID)
	}
	if err != nil {
		return pkg, fmt.Errorf("read the evidence of case %s: %w", a.CaseID, err)
	}
	if pkg.Version != p.EvidenceVersion || PackageDigest(pkg) != p.EvidenceDigest {
		return pkg, evidenceChanged(a.CaseID, pkg.Version)
	}
	return pkg, nil
}

// refuseBeforeSend ends a, still executing, refused by the rule in cause,
// when the package to send is no longer the one checked; nothing was sent.
// Any other error is returned as is and the action stays executing.
func (s *Service) refuseBeforeSend(ctx context.Context, a Action, cause error) (Action, error) {
	e, ok := asRefusal(cause)
	if !ok {
		_ = s.db.WithContext(context.WithoutCancel(ctx)).Model(&row{}).Where("id = ? AND status = ?", a.ID, string(StatusExecuting)).
			Updates(map[string]any{"lease_until": nil, "updated_at": s.clock.Now()}).Error
		return a, cause
	}
	var out row
	var inDoubt bool
	err := s.db.Transact(context.WithoutCancel(ctx), func(tx *gorm.DB) error {
		var r row
		if err := tx.WithContext(ctx).Where("id = ?", a.ID).Take(&r).Error; err != nil {
			return err
		}
		if r.Attempts > 1 {
			// An earlier attempt may have reached Stripe (its answer was
			// lost), and the package it sent cannot be sent again: say so
			// instead of claiming nothing was sent.
			inDoubt = true
			var err error
			out, err = s.failInDoubt(ctx, tx, r, e)
			return err
		}
		var err error
		out, err = s.refuse(ctx, tx, r, StatusExecuting, cases.SystemActor, "", e, nil)
		return err
	})
	if err != nil {
		return a, err
	}
	s.metrics.outcome(a.Type, string(out.Status))
	if inDoubt {
		return out.action(), errs.Coded(errs.ECONFLICT, "evidence_changed_in_doubt", "%s", deref(out.ErrorMessage))
	}
	return out.action(), cause
}

// failInDoubt ends r, whose earlier attempt may have reached the provider,
// failed because its package changed since (rule e): on the action, the
// timeline and the audit log, with what to check at Stripe.
func (s *Service) failInDoubt(ctx context.Context, tx *gorm.DB, r row, e *errs.Error) (row, error) {
	var p Params
	_ = jsonUnmarshal(r.Params, &p)
	msg := fmt.Sprintf("%s An earlier attempt of this action may already have reached Stripe; check dispute %s at Stripe before sending evidence again.", e.Message, p.Dispute)
	res := tx.WithContext(ctx).Model(&row{}).Where("id = ? AND status = ?", r.ID, string(StatusExecuting)).
		Updates(map[string]any{"status": string(StatusFailed), "error_code": "evidence_changed_in_doubt", "error_message": msg, "lease_until": nil, "updated_at": s.clock.Now()})
	if res.Error != nil {
		return r, fmt.Errorf("fail action %s: %w", r.ID, res.Error)
	}
	if res.RowsAffected == 0 {
		return r, errs.Coded(errs.ECONFLICT, "not_pending", "action %s changed concurrently", r.ID)
	}
	var out row
	if err := tx.WithContext(ctx).Where("id = ?", r.ID).Take(&out).Error; err != nil {
		return r, err
	}
	summary := fmt.Sprintf("%s (%s) stopped: %s", capitalize(describe(out.action())), r.ID, msg)
	if err := s.cases.Record(ctx, tx, r.CaseID, cases.SystemActor, "action_failed", summary, ""); err != nil {
		return out, err
	}
	// Announced like a failure at the provider: the person watching for
	// failed actions must check the dispute at Stripe.
	if err := s.cases.Announce(ctx, tx, events.TypeActionFailed, "action-failed/"+r.ID, r.CaseID, r.Type+": evidence_changed_in_doubt", r.Amount, r.Currency); err != nil {
		return out, err
	}
	return out, s.audit.Record(ctx, tx, audit.Entry{Action: "action.failed." + r.Type, CaseID: r.CaseID, ObjectType: "action", ObjectID: r.ID,
		Before: audit.Marshal(r.action()), After: audit.Marshal(out.action()), Detail: "evidence_changed_in_doubt: " + msg})
}

// sendEvidence uploads each file of pkg through the Files API (purpose
// dispute_evidence), each with its own idempotency key derived from the
// action's (key + "/file/" + field), so a retried action uploads each file
// once; then it updates the dispute with the text fields and the file ids,
// submitting when submit. The result's Raw carries the file ids ("files").
func (s *Service) sendEvidence(ctx context.Context, disputeID string, pkg disputes.Package, submit bool, key billing.Key) (billing.Result, map[string]string, error) {
	files := append([]disputes.File(nil), pkg.Files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Field < files[j].Field })
	fileIDs := make(map[string]string, len(files))
	for _, f := range files {
		fk := key
		fk.IdempotencyKey = key.IdempotencyKey + "/file/" + string(f.Field)
		res, err := s.provider.UploadFile(ctx, billing.FileUpload{Key: fk, Purpose: FilePurpose, Name: f.Name, MIMEType: f.MIMEType, Content: f.Content})
		if err != nil {
			return billing.Result{}, nil, err
		}
		if res.ObjectID == "" {
			return billing.Result{}, nil, &billing.ProviderError{Type: "api_error", Message: "upload of " + string(f.Field) + " returned no file id", Retryable: true}
		}
		fileIDs[string(f.Field)] = res.ObjectID
	}
	evidence := make(map[string]string, len(pkg.Fields)+len(fileIDs))
	for k, v := range pkg.Fields {
		evidence[k] = v
	}
	for k, v := range fileIDs {
		evidence[k] = v
	}
	res, err := s.provider.UpdateDisputeEvidence(ctx, disputeID, evidence, submit, key)
	if err != nil {
		return billing.Result{}, nil, err
	}
	if res.Raw == nil {
		res.Raw = map[string]any{}
	}
	res.Raw["files"] = fileIDs
	res.Raw["submitted"] = submit
	res.Raw["evidence_version"] = pkg.Version
	return res, fileIDs, nil
}

// errNoEvidence is returned by call for an evidence type: those go through
// sendEvidence, which needs the package.
var errNoEvidence = errors.New("evidence actions are sent by sendEvidence")
