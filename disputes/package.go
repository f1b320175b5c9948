package disputes

// File is one file of an evidence submission: uploaded to the provider's
// Files API (purpose dispute_evidence), its file id goes into Field.
type File struct {
	Field    EvidenceField // a file field (uncategorized_file, …)
	Name     string        // e.g. rebuttal-dp_123.pdf
	MIMEType string        // application/pdf, image/png, image/jpeg
	Content  []byte
}

// Package is a dispute case's evidence as it would leave for the provider:
// the text fields and the files, already checked against the limits.
type Package struct {
	CaseID    string
	DisputeID string
	Brand     string            // card brand: Mastercard allows fewer pages
	Version   int64             // the draft's version: what was checked is what is sent
	Fields    map[string]string // text fields only; file fields come from Files after upload
	Files     []File
	Status    string // the draft's status: see Draft* constants
}

// Draft statuses.
const (
	DraftStatusDraft     = "draft"     // assembled or edited, not sent
	DraftStatusStaged    = "staged"    // sent with submit=false: Stripe holds a draft
	DraftStatusSubmitted = "submitted" // sent with submit=true: final
)
