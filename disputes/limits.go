package disputes

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/recourse-hq/recourse/internal/errs"
)

// Stripe's limits on all the evidence of one dispute, files included
// (DISPUTES.md "Limits Stripe enforces").
const (
	// MaxEvidenceBytes is the most all evidence files may weigh together
	// (4.5 MB).
	MaxEvidenceBytes = 4_500_000
	// MaxPages and MaxPagesMastercard bound the pages of all evidence
	// together: fewer than 50, fewer than 19 for Mastercard.
	MaxPages           = 50
	MaxPagesMastercard = 19
)

// Codes of the limit errors (all EUNPROCESSABLE, 422), each naming the
// limit it enforces.
const (
	CodeFieldTooLong    = "evidence_field_too_long"       // one text field over its characters (details: field, chars, max_chars)
	CodeTotalTooLong    = "evidence_too_long"             // all fields together over 150,000 characters
	CodeLink            = "evidence_contains_link"        // a link (http://, https://, www.) in a text field
	CodeUnknownField    = "evidence_field_unknown"        // not one of Stripe's evidence fields
	CodeFileField       = "evidence_field_is_file"        // a file field set as text
	CodeFieldInvalid    = "evidence_field_invalid"        // text that is not valid UTF-8
	CodeFilesTooLarge   = "evidence_files_too_large"      // files over 4.5 MB together
	CodeTooManyPages    = "evidence_too_many_pages"       // 50 pages or more (19 or more for Mastercard)
	CodeUnreadableFile  = "evidence_file_unreadable"      // a PDF that cannot be opened to count its pages
	CodeSubmitted       = "evidence_already_submitted"    // the draft was submitted: nothing changes any more
	CodeNotDisputeCase  = "not_a_dispute_case"            // evidence belongs to dispute cases
	CodeNoDisputeLinked = "dispute_not_linked"            // a dispute case without its dispute
	CodeDraftChanged    = "evidence_draft_changed"        // the draft moved on concurrently
	CodeNoDraft         = "no_evidence_draft"             // no draft assembled yet
	CodeNoPacket        = "no_evidence_packet"            // the draft has no packet
	CodeNotMirrored     = "dispute_not_mirrored"          // the case's dispute is not in the mirror
	CodeFieldsRequired  = "evidence_fields_required"      // a PATCH without fields
	CodeVersionMismatch = "evidence_version_mismatch"     // Sent for a version that is not the draft's
	CodeAlreadySent     = "evidence_sent_by_other_action" // Sent for a submitted draft by another action
)

// MaxPagesFor returns the page limit for a card brand (exclusive: the
// evidence must have fewer pages).
func MaxPagesFor(brand string) int {
	if NormalizeBrand(brand) == BrandMastercard {
		return MaxPagesMastercard
	}
	return MaxPages
}

// CheckTextField checks one text field as an analyst sets it: a known text
// field, valid UTF-8, within its characters ([MaxLongTextChars] or
// [MaxShortTextChars]) and without links. Errors are EUNPROCESSABLE with
// the codes above, naming the field in details.
func CheckTextField(name, value string) error {
	f := EvidenceField(name)
	switch f.Kind() {
	case "":
		return errs.Coded(errs.EUNPROCESSABLE, CodeUnknownField, "%q is not a Stripe evidence field", name).
			WithDetails(map[string]any{"field": name})
	case FieldKindFile:
		return errs.Coded(errs.EUNPROCESSABLE, CodeFileField, "%s holds a file; the workbench builds files (the rebuttal packet goes into uncategorized_file), they cannot be set as text", name).
			WithDetails(map[string]any{"field": name})
	}
	if !utf8.ValidString(value) {
		return errs.Coded(errs.EUNPROCESSABLE, CodeFieldInvalid, "%s is not valid UTF-8", name).WithDetails(map[string]any{"field": name})
	}
	if n := utf8.RuneCountInString(value); n > f.MaxChars() {
		return errs.Coded(errs.EUNPROCESSABLE, CodeFieldTooLong, "%s has %d characters; Stripe takes at most %d in this field", name, n, f.MaxChars()).
			WithDetails(map[string]any{"field": name, "chars": n, "max_chars": f.MaxChars()})
	}
	if link, ok := findAnyLink(value); ok {
		return errs.Coded(errs.EUNPROCESSABLE, CodeLink, "%s contains a link (%s): banks read nothing external, include the content instead", name, link).
			WithDetails(map[string]any{"field": name, "link": link})
	}
	return nil
}

// CheckTextFields checks every text field ([CheckTextField], in field-name
// order, the first problem wins) and all of them together against
// [MaxTotalChars] (code evidence_too_long).
func CheckTextFields(fields map[string]string) error {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	slices.Sort(names)
	total := 0
	for _, name := range names {
		if err := CheckTextField(name, fields[name]); err != nil {
			return err
		}
		total += utf8.RuneCountInString(fields[name])
	}
	if total > MaxTotalChars {
		return errs.Coded(errs.EUNPROCESSABLE, CodeTotalTooLong, "the evidence fields have %d characters together; Stripe takes at most %d", total, MaxTotalChars).
			WithDetails(map[string]any{"chars": total, "max_chars": MaxTotalChars})
	}
	return nil
}

// CheckPackage checks everything that is about to leave: the text fields
// ([CheckTextFields]), the files together against [MaxEvidenceBytes], and
// the pages of every PDF together against [MaxPagesFor] the brand (counted
// with pdfcpu; images count one page each).
func CheckPackage(p Package) error {
	if err := CheckTextFields(p.Fields); err != nil {
		return err
	}
	size, pages := 0, 0
	for _, f := range p.Files {
		size += len(f.Content)
		if f.MIMEType == "application/pdf" {
			n, err := CountPages(f.Content)
			if err != nil {
				return errs.Coded(errs.EUNPROCESSABLE, CodeUnreadableFile, "%s (%s) cannot be read as a PDF to count its pages", f.Name, f.Field).
					WithDetails(map[string]any{"field": string(f.Field)})
			}
			pages += n
		} else {
			pages++
		}
	}
	if size > MaxEvidenceBytes {
		return errs.Coded(errs.EUNPROCESSABLE, CodeFilesTooLarge, "the evidence files weigh %d bytes together; Stripe takes at most %d (4.5 MB)", size, MaxEvidenceBytes).
			WithDetails(map[string]any{"bytes": size, "max_bytes": MaxEvidenceBytes})
	}
	if limit := MaxPagesFor(p.Brand); pages >= limit {
		return errs.Coded(errs.EUNPROCESSABLE, CodeTooManyPages, "the evidence has %d pages; %s takes fewer than %d", pages, brandLimitName(p.Brand), limit).
			WithDetails(map[string]any{"pages": pages, "max_pages_exclusive": limit, "brand": NormalizeBrand(p.Brand)})
	}
	return nil
}

func brandLimitName(brand string) string {
	if NormalizeBrand(brand) == BrandMastercard {
		return "Mastercard"
	}
	return "Stripe"
}

// findAnyLink finds an http://, https:// or www. link (ASCII case
// insensitive).
func findAnyLink(s string) (string, bool) {
	if link, ok := findLink(s); ok {
		return link, true
	}
	lower := strings.ToLower(s)
	for from := 0; ; {
		i := strings.Index(lower[from:], "www.")
		if i < 0 {
			return "", false
		}
		at := from + i
		// a word of its own: "www." at the start or after a non-letter,
		// followed by a letter or digit.
		if (at == 0 || !isWordByte(lower[at-1])) && at+4 < len(lower) && isWordByte(lower[at+4]) {
			link := s[at:]
			if end := strings.IndexAny(link, " \t\r\n\"'<>()[]"); end >= 0 {
				link = link[:end]
			}
			if len(link) > 60 {
				link = strings.ToValidUTF8(link[:60], "") + "…"
			}
			return link, true
		}
		from = at + 4
	}
}

func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// plainFields returns the non-empty text fields of fields (file fields are
// never kept in a draft).
func plainFields(fields map[string]string) map[string]string {
	out := make(map[string]string, len(fields))
	for k, v := range fields {
		if v != "" && EvidenceField(k).Kind() == FieldKindText {
			out[k] = v
		}
	}
	return out
}

// describeLimits is the limits in words, for the workbench document.
func describeLimits(brand string) string {
	return fmt.Sprintf("each long text field ≤ %d characters (short ones ≤ %d), all fields ≤ %d, files ≤ 4.5 MB together, fewer than %d pages, no links",
		MaxLongTextChars, MaxShortTextChars, MaxTotalChars, MaxPagesFor(brand))
}
