package actions

import (
	"context"

	"gorm.io/gorm"
)

// EvidenceFile is one file of an evidence submission: uploaded to the
// provider's Files API (purpose dispute_evidence), its file id goes into
// Field.
type EvidenceFile struct {
	Field    string // a Stripe evidence file field (uncategorized_file, …)
	Name     string // file name, e.g. rebuttal-dp_123.pdf
	MIMEType string // application/pdf, image/png, image/jpeg
	Content  []byte
}

// EvidencePackage is a dispute case's evidence as it would leave: the text
// fields and the files, checked against the provider's limits.
type EvidencePackage struct {
	DisputeID string
	Brand     string            // card brand: Mastercard allows fewer pages
	Version   int64             // the draft's version: what was checked is what is sent
	Fields    map[string]string // text fields only; file fields are filled from Files after upload
	Files     []EvidenceFile
	Status    string // the draft's status: draft, staged, submitted
}

// Evidence is the dispute workbench as submission sees it
// (*disputes.Workbench, wired in cmd). Both methods work inside tx.
type Evidence interface {
	// Package returns the case's current evidence, validated against the
	// limits (errs EUNPROCESSABLE naming the limit); errs ENOTFOUND when the
	// case has no draft yet.
	Package(ctx context.Context, tx *gorm.DB, caseID string) (EvidencePackage, error)
	// Sent records that the package at version went to the provider:
	// staged (submit false) or submitted, by action actionID, with the
	// provider's file ids per field.
	Sent(ctx context.Context, tx *gorm.DB, caseID string, version int64, submitted bool, actionID string, fileIDs map[string]string) error
}
