package disputes_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/go-pdf/fpdf"

	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/errs"
)

func pdfOfPages(t *testing.T, n int) []byte {
	t.Helper()
	p := fpdf.New("P", "mm", "Letter", "")
	p.SetFont("Helvetica", "", 12)
	for i := range n {
		p.AddPage()
		p.Cell(40, 10, fmt.Sprintf("page %d", i+1))
	}
	var buf bytes.Buffer
	if err := p.Output(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCheckPackagePagesAndSize(t *testing.T) {
	t.Parallel()
	pkg := func(brand string, files ...disputes.File) disputes.Package {
		return disputes.Package{Brand: brand, Fields: map[string]string{"uncategorized_text": "ok"}, Files: files}
	}
	pdf := func(n int) disputes.File {
		return disputes.File{Field: disputes.FieldUncategorizedFile, Name: "p.pdf", MIMEType: "application/pdf", Content: pdfOfPages(t, n)}
	}
	for _, tc := range []struct {
		name  string
		p     disputes.Package
		code  string
		pages int
	}{
		{name: "mastercard 18 pages", p: pkg("mastercard", pdf(18))},
		{name: "mastercard 19 pages", p: pkg("MasterCard", pdf(19)), code: disputes.CodeTooManyPages},
		{name: "visa 49 pages", p: pkg("visa", pdf(49))},
		{name: "visa 50 pages", p: pkg("visa", pdf(50)), code: disputes.CodeTooManyPages},
		{name: "pages of two files add up", p: pkg("mastercard", pdf(10), disputes.File{Field: disputes.FieldReceipt, Name: "r.pdf", MIMEType: "application/pdf", Content: pdfOfPages(t, 9)}), code: disputes.CodeTooManyPages},
		{name: "4.5 MB exactly", p: pkg("visa", disputes.File{Field: disputes.FieldReceipt, Name: "r.png", MIMEType: "image/png", Content: make([]byte, disputes.MaxEvidenceBytes)})},
		{name: "one byte over 4.5 MB", p: pkg("visa", disputes.File{Field: disputes.FieldReceipt, Name: "r.png", MIMEType: "image/png", Content: make([]byte, disputes.MaxEvidenceBytes+1)}), code: disputes.CodeFilesTooLarge},
		{name: "not a PDF", p: pkg("visa", disputes.File{Field: disputes.FieldUncategorizedFile, Name: "x.pdf", MIMEType: "application/pdf", Content: []byte("hello")}), code: disputes.CodeUnreadableFile},
		{name: "a link in a field", p: disputes.Package{Brand: "visa", Fields: map[string]string{"uncategorized_text": "see WWW.example.com"}}, code: disputes.CodeLink},
		{name: "a field over its limit", p: disputes.Package{Brand: "visa", Fields: map[string]string{"customer_name": strings.Repeat("n", disputes.MaxShortTextChars+1)}}, code: disputes.CodeFieldTooLong},
	} {
		err := disputes.CheckPackage(tc.p)
		if tc.code == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		e, ok := errs.As(err)
		if !ok || e.Code != tc.code || e.Kind != errs.EUNPROCESSABLE {
			t.Errorf("%s: got %v, want %s (422)", tc.name, err, tc.code)
		}
	}
}

func TestCheckTextFieldLinks(t *testing.T) {
	t.Parallel()
	for in, bad := range map[string]bool{
		"plain text":               false,
		"email me at a@b.com":      false,
		"the www.example.com site": true,
		"HTTPS://EXAMPLE.COM":      true,
		"awww.nice":                false,
		"www.":                     false,
	} {
		err := disputes.CheckTextField("uncategorized_text", in)
		if (err != nil) != bad {
			t.Errorf("%q: %v", in, err)
		}
	}
}
