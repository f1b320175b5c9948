package actions

import (
	"context"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/disputes"
)

// Evidence is the dispute workbench as submission sees it
// (*disputes.Workbench, wired in cmd). Both methods work inside tx.
type Evidence interface {
	// Package returns the case's current evidence, validated against the
	// limits (errs EUNPROCESSABLE naming the limit); errs ENOTFOUND when the
	// case has no draft yet.
	Package(ctx context.Context, tx *gorm.DB, caseID string) (disputes.Package, error)
	// Sent records that the package at version went to the provider:
	// staged (submitted false) or submitted, by action actionID, with the
	// provider's file ids per field.
	Sent(ctx context.Context, tx *gorm.DB, caseID string, version int64, submitted bool, actionID string, fileIDs map[string]string) error
}
