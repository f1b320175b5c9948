package actions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/errs"
)

// Evidence submission (submit_evidence) and staging (stage_evidence) go
// through the same machinery as every other action: checked here when
// requested, again on approval and right before the provider is called
// (recheck), under the dispute's subject lock, so two concurrent
// submissions cannot both pass. Stripe takes one submission per dispute;
// a second is refused before Stripe is called.
//
// What is stored on the action is the dispute, the draft's version and a
// digest of the package (never the text): the package is read again when
// the action executes, and a different package is refused
// (evidence_changed), so what was checked and approved is what is sent.

// planEvidence checks a submission (t SubmitEvidence) or a staging
// (StageEvidence) of the case's evidence. Errors: EUNAVAILABLE
// (evidence_unavailable: no workbench wired), EUNPROCESSABLE (not a dispute
// case, and the package's own limit errors), ECONFLICT (dispute_not_open,
// deadline_passed, evidence_already_submitted, no_evidence_draft,
// evidence_changed).
func (s *Service) planEvidence(ctx context.Context, tx *gorm.DB, m Mirror, c CaseRef, t Type, rp RequestParams, self string) (plan, error) {
	if s.evidence == nil {
		return plan{}, errs.Coded(errs.EUNAVAILABLE, "evidence_unavailable", "the dispute evidence workbench is not configured; evidence cannot be sent")
	}
	if c.Kind != cases.KindDispute {
		return plan{}, errs.Coded(errs.EUNPROCESSABLE, "not_a_dispute_case", "evidence is sent from a dispute case; case %s is a %s case", c.ID, c.Kind)
	}
	if err := requireLink("dispute", c.Dispute); err != nil {
		return plan{}, err
	}
	if err := lockSubject(ctx, s.db, tx, c.Dispute); err != nil {
		return plan{}, err
	}
	d, err := m.Dispute(ctx, c.Dispute)
	if err != nil {
		return plan{}, notMirrored("dispute", c.Dispute, err)
	}
	if !awaitsResponse(d) {
		if d.SubmissionCount > 0 {
			return plan{}, alreadySubmitted(d.ID, fmt.Sprintf("Stripe has its evidence (status %s, %d submission(s))", d.Status, d.SubmissionCount))
		}
		return plan{}, errs.Coded(errs.ECONFLICT, "dispute_not_open", "dispute %s is %s; evidence goes only to a dispute that needs a response", d.ID, d.Status).
			WithDetails(map[string]any{"dispute_status": d.Status})
	}
	if d.PastDue {
		return plan{}, errs.Coded(errs.ECONFLICT, "deadline_passed", "Stripe marks dispute %s past due; it no longer takes evidence", d.ID)
	}
	if d.EvidenceDueBy != nil && !d.EvidenceDueBy.IsZero() && !s.clock.Now().Before(*d.EvidenceDueBy) {
		return plan{}, errs.Coded(errs.ECONFLICT, "deadline_passed", "evidence for dispute %s was due %s; Stripe no longer takes it", d.ID, d.EvidenceDueBy.UTC().Format("2006-01-02 15:04 MST")).
			WithDetails(map[string]any{"evidence_due_by": d.EvidenceDueBy.UTC()})
	}
	if id, found, err := s.liveActionOn(ctx, tx, d.ID, SubmitEvidence, self); err != nil {
		return plan{}, err
	} else if found {
		return plan{}, alreadySubmitted(d.ID, "action "+id+" submits it").WithDetails(map[string]any{"action": id})
	}
	if id, found, err := s.liveActionOn(ctx, tx, d.ID, AcceptDispute, self); err != nil {
		return plan{}, err
	} else if found {
		return plan{}, errs.Coded(errs.ECONFLICT, "dispute_accepted", "dispute %s is being accepted as a loss (action %s); evidence no longer goes to it", d.ID, id).
			WithDetails(map[string]any{"action": id})
	}
	pkg, err := s.evidence.Package(ctx, tx, c.ID)
	if errs.Is(err, errs.ENOTFOUND) {
		return plan{}, errs.Coded(errs.ECONFLICT, "no_evidence_draft", "case %s has no evidence draft yet; assemble one in the workbench first", c.ID)
	}
	if err != nil {
		return plan{}, err // the package's limit errors (EUNPROCESSABLE) name the limit
	}
	if pkg.Status == disputes.DraftStatusSubmitted {
		return plan{}, alreadySubmitted(d.ID, "the draft is marked submitted")
	}
	if pkg.DisputeID != "" && pkg.DisputeID != d.ID {
		return plan{}, errs.Coded(errs.ECONFLICT, "evidence_mismatch", "the evidence draft of case %s is for dispute %s, not %s", c.ID, pkg.DisputeID, d.ID)
	}
	digest := PackageDigest(pkg)
	if (rp.EvidenceVersion != nil && *rp.EvidenceVersion != pkg.Version) || (rp.EvidenceDigest != "" && rp.EvidenceDigest != digest) {
		return plan{}, evidenceChanged(c.ID, pkg.Version)
	}
	pl := plan{params: Params{Dispute: d.ID, EvidenceVersion: pkg.Version, EvidenceDigest: digest}, subject: d.ID,
		amount: d.Amount, currency: d.Currency}
	if t == SubmitEvidence {
		pl.summary = fmt.Sprintf("submission of evidence for dispute %s (draft version %d, %d field(s), %d file(s); final)", d.ID, pkg.Version, len(pkg.Fields), len(pkg.Files))
		if s.policy.Evidence.SubmitRequiresApproval {
			pl.approval = []string{"policy: evidence submissions are approved by a supervisor"}
			pl.rules = []string{"evidence.submit_requires_approval"}
		}
	} else {
		pl.summary = fmt.Sprintf("staging of evidence for dispute %s (draft version %d, %d field(s), %d file(s); Stripe keeps a draft)", d.ID, pkg.Version, len(pkg.Fields), len(pkg.Files))
	}
	return pl, nil
}

// awaitsResponse reports whether d may still take evidence: it needs a
// response, or its status is one Recourse does not know (open strings: a
// missed deadline loses the dispute, so an unknown status is treated as
// possibly needing one).
func awaitsResponse(d billing.Dispute) bool {
	switch strings.ToLower(strings.TrimSpace(d.Status)) {
	case billing.DisputeStatusNeedsResponse, billing.DisputeStatusWarningNeedsResponse:
		return true
	}
	return !billing.KnownDisputeStatus(d.Status)
}

func alreadySubmitted(disputeID, why string) *errs.Error {
	return errs.Coded(errs.ECONFLICT, "evidence_already_submitted", "evidence for dispute %s was already submitted (%s); Stripe takes one submission", disputeID, why)
}

func evidenceChanged(caseID string, version int64) *errs.Error {
	return errs.Coded(errs.ECONFLICT, "evidence_changed",
		"the evidence of case %s changed after this action was requested (now version %d); request it again so what is sent is what was checked", caseID, version).
		WithDetails(map[string]any{"evidence_version": version})
}

// liveActionOn returns another action of type t on the dispute that is
// waiting for approval, executing or done.
func (s *Service) liveActionOn(ctx context.Context, tx *gorm.DB, disputeID string, t Type, self string) (string, bool, error) {
	var rows []row
	if err := tx.WithContext(ctx).Where("subject_id = ? AND type = ? AND status IN ? AND id <> ?", disputeID, string(t),
		[]string{string(StatusPendingApproval), string(StatusExecuting), string(StatusSucceeded)}, self).Limit(1).Find(&rows).Error; err != nil {
		return "", false, fmt.Errorf("find %s actions on %s: %w", t, disputeID, err)
	}
	if len(rows) == 0 {
		return "", false, nil
	}
	return rows[0].ID, true, nil
}

// PackageDigest is a SHA-256 over the package's text fields and files
// (field, name, type, content), independent of map order: what an
// evidence action pins instead of the text itself.
func PackageDigest(p disputes.Package) string {
	h := sha256.New()
	keys := make([]string, 0, len(p.Fields))
	for k := range p.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		writeDigestPart(h, "field", k, p.Fields[k])
	}
	files := append([]disputes.File(nil), p.Files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Field < files[j].Field })
	for _, f := range files {
		sum := sha256.Sum256(f.Content)
		writeDigestPart(h, "file", string(f.Field), f.Name, f.MIMEType, hex.EncodeToString(sum[:]))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func writeDigestPart(h interface{ Write([]byte) (int, error) }, parts ...string) {
	b, _ := json.Marshal(parts) // length-safe framing: no two packages share an encoding
	_, _ = h.Write(b)
	_, _ = h.Write([]byte{'\n'})
}
