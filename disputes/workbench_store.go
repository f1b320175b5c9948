package disputes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/errs"
)

// draftRow is one row of dispute_evidence_drafts (migration 0012).
type draftRow struct {
	CaseID       string `gorm:"primaryKey"`
	DisputeID    string
	CardBrand    string
	Version      int64
	Status       string
	Fields       string // JSON object: field → text
	EditedFields string // JSON array of the fields the analyst changed
	Packet       []byte
	PacketPages  int
	AssembledAt  *time.Time
	AssembledBy  *string
	UpdatedAt    time.Time
	UpdatedBy    string
	SentActionID *string
	FileIDs      *string // JSON object: field → provider file id
	StagedAt     *time.Time
	SubmittedAt  *time.Time
}

func (draftRow) TableName() string { return "dispute_evidence_drafts" }

func (r draftRow) fields() map[string]string {
	out := map[string]string{}
	_ = json.Unmarshal([]byte(r.Fields), &out)
	return out
}

func (r draftRow) edited() []string {
	var out []string
	_ = json.Unmarshal([]byte(r.EditedFields), &out)
	if out == nil {
		out = []string{}
	}
	return out
}

func (r draftRow) fileIDs() map[string]string {
	out := map[string]string{}
	if r.FileIDs != nil {
		_ = json.Unmarshal([]byte(*r.FileIDs), &out)
	}
	return out
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err)) // maps of strings always marshal
	}
	return string(b)
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func (r *draftRow) normalize() {
	r.UpdatedAt = r.UpdatedAt.UTC()
	r.AssembledAt = utcPtr(r.AssembledAt)
	r.StagedAt = utcPtr(r.StagedAt)
	r.SubmittedAt = utcPtr(r.SubmittedAt)
}

// loadDraft returns the case's draft (found false when there is none).
func loadDraft(ctx context.Context, g *gorm.DB, caseID string) (draftRow, bool, error) {
	var r draftRow
	err := g.WithContext(ctx).Where("case_id = ?", caseID).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return draftRow{}, false, nil
	}
	if err != nil {
		return draftRow{}, false, fmt.Errorf("load the evidence draft of case %s: %w", caseID, err)
	}
	r.normalize()
	return r, true, nil
}

// saveDraft writes next: an insert when prev is nil, else an update that
// holds only while the stored version is still prev's (optimistic; zero
// rows is a conflict).
func saveDraft(ctx context.Context, tx *gorm.DB, prev *draftRow, next draftRow) error {
	if prev == nil {
		if err := tx.WithContext(ctx).Create(&next).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return draftChanged(next.CaseID)
			}
			return fmt.Errorf("create the evidence draft of case %s: %w", next.CaseID, err)
		}
		return nil
	}
	res := tx.WithContext(ctx).Model(&draftRow{}).Where("case_id = ? AND version = ?", next.CaseID, prev.Version).
		Updates(map[string]any{
			"dispute_id": next.DisputeID, "card_brand": next.CardBrand, "version": next.Version, "status": next.Status,
			"fields": next.Fields, "edited_fields": next.EditedFields, "packet": next.Packet, "packet_pages": next.PacketPages,
			"assembled_at": next.AssembledAt, "assembled_by": next.AssembledBy, "updated_at": next.UpdatedAt, "updated_by": next.UpdatedBy,
			"sent_action_id": next.SentActionID, "file_ids": next.FileIDs, "staged_at": next.StagedAt, "submitted_at": next.SubmittedAt,
		})
	if res.Error != nil {
		return fmt.Errorf("update the evidence draft of case %s: %w", next.CaseID, res.Error)
	}
	if res.RowsAffected == 0 {
		return draftChanged(next.CaseID)
	}
	return nil
}

func draftChanged(caseID string) error {
	return errs.Coded(errs.ECONFLICT, CodeDraftChanged, "the evidence draft of case %s changed while this request was handled; read it again and retry", caseID)
}

func submittedError(caseID string) error {
	return errs.Coded(errs.ECONFLICT, CodeSubmitted, "the evidence of case %s was submitted; Stripe takes one submission and the draft no longer changes", caseID)
}
