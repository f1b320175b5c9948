package disputes

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-pdf/fpdf"
	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
)

// The rebuttal packet is one PDF: a one-page letter, then the exhibits, each
// on its own page(s) and opening with a one-line "What it proves:". It is
// Letter portrait, 12 pt (DISPUTES.md: ≥ 12 pt, Letter or A4 portrait), with
// no links and nothing external. Tables are capped (see maxRows*) so a
// packet stays well under Mastercard's 19 pages.

// letterPoint is one point of the claim answered, citing exhibits.
type letterPoint struct {
	Text     string
	Exhibits []int // exhibit numbers cited
}

// letter is page 1 of the packet.
type letter struct {
	Title       string
	Identifiers []string // "Dispute: dp_…", …
	Position    string
	Transaction []string
	Points      []letterPoint
	Exhibits    []string // "Exhibit 1 — Access activity log"
	Request     string
	// Edited is the letter as the analyst rewrote it (uncategorized_text):
	// when set, page 1 is this text instead (its first line as the title).
	Edited string
}

// exhibitTable is a table of an exhibit; widths in mm.
type exhibitTable struct {
	Header []string
	Widths []float64
	Rows   [][]string
	// Omitted is how many rows were left out (said below the table).
	Omitted int
}

// exhibit is one exhibit of the packet.
type exhibit struct {
	Key        string // access_log, consent, …
	Number     int
	Title      string
	Proves     string
	Paragraphs []string
	Table      *exhibitTable
}

// citation writes "Exhibit 1" or "Exhibits 1 and 3".
func citation(nums []int) string {
	switch len(nums) {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf("Exhibit %d", nums[0])
	}
	parts := make([]string, len(nums))
	for i, n := range nums {
		parts[i] = fmt.Sprint(n)
	}
	return "Exhibits " + strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// text renders the letter as plain text (the uncategorized_text field).
func (l letter) text() string {
	var b strings.Builder
	b.WriteString(l.Title + "\n\n")
	for _, s := range l.Identifiers {
		b.WriteString(s + "\n")
	}
	b.WriteString("\nOur position: " + l.Position + "\n\nTransaction details:\n")
	for _, s := range l.Transaction {
		b.WriteString("- " + s + "\n")
	}
	b.WriteString("\nThe claim answered:\n")
	for i, p := range l.Points {
		fmt.Fprintf(&b, "%d. %s", i+1, p.Text)
		if c := citation(p.Exhibits); c != "" {
			b.WriteString(" (" + c + ")")
		}
		b.WriteString("\n")
	}
	b.WriteString("\nExhibits (in the attached rebuttal packet):\n")
	for _, s := range l.Exhibits {
		b.WriteString("- " + s + "\n")
	}
	b.WriteString("\n" + l.Request + "\n")
	return b.String()
}

const (
	pageMargin = 20.0
	bodyFont   = 12.0
)

// renderPacket writes the packet PDF. The letter is kept to page 1: when it
// does not fit at 12 pt it is set at 11 and then 10 pt (and left at 10 pt
// if even that spills: a long letter is never a reason to refuse).
func renderPacket(l letter, exhibits []exhibit, created time.Time) ([]byte, error) {
	var out []byte
	for _, size := range []float64{bodyFont, 11, 10} {
		b, fits, err := renderPacketAt(l, exhibits, created, size)
		if err != nil {
			return nil, err
		}
		out = b
		if fits {
			break
		}
	}
	return out, nil
}

func renderPacketAt(l letter, exhibits []exhibit, created time.Time, letterSize float64) ([]byte, bool, error) {
	pdf := fpdf.New("P", "mm", "Letter", "")
	pdf.SetMargins(pageMargin, pageMargin, pageMargin)
	pdf.SetAutoPageBreak(true, pageMargin)
	pdf.SetCreationDate(created.UTC())
	pdf.SetModificationDate(created.UTC())
	pdf.SetTitle("Dispute rebuttal", true)
	pdf.SetCreator("Recourse", true)
	tr := pdf.UnicodeTranslatorFromDescriptor("")
	lh := letterSize * 0.43 // line height in mm

	pdf.AddPage()
	if l.Edited != "" {
		return renderEditedLetter(pdf, tr, l.Edited, exhibits, letterSize)
	}
	pdf.SetFont("Helvetica", "B", letterSize+2)
	pdf.MultiCell(0, lh+1, tr(l.Title), "", "L", false)
	pdf.Ln(1)
	pdf.SetFont("Helvetica", "", letterSize)
	for _, s := range l.Identifiers {
		pdf.MultiCell(0, lh, tr(s), "", "L", false)
	}
	section := func(title string) {
		pdf.Ln(1.5)
		pdf.SetFont("Helvetica", "B", letterSize)
		pdf.MultiCell(0, lh, tr(title), "", "L", false)
		pdf.SetFont("Helvetica", "", letterSize)
	}
	section("Our position")
	pdf.MultiCell(0, lh, tr(l.Position), "", "L", false)
	section("Transaction details")
	for _, s := range l.Transaction {
		pdf.MultiCell(0, lh, tr("- "+s), "", "L", false)
	}
	section("The claim answered")
	for i, p := range l.Points {
		t := fmt.Sprintf("%d. %s", i+1, p.Text)
		if c := citation(p.Exhibits); c != "" {
			t += " (" + c + ")"
		}
		pdf.MultiCell(0, lh, tr(t), "", "L", false)
	}
	section("Exhibits")
	for _, s := range l.Exhibits {
		pdf.MultiCell(0, lh, tr("- "+s), "", "L", false)
	}
	pdf.Ln(1.5)
	pdf.MultiCell(0, lh, tr(l.Request), "", "L", false)
	fits := pdf.PageNo() == 1

	return finishPacket(pdf, tr, exhibits, fits)
}

// renderEditedLetter sets the analyst's letter as page 1 (first line bold,
// as the title; each further line as written), then the exhibits.
func renderEditedLetter(pdf *fpdf.Fpdf, tr func(string) string, text string, exhibits []exhibit, letterSize float64) ([]byte, bool, error) {
	lh := letterSize * 0.43
	lines := strings.Split(strings.ReplaceAll(strings.TrimSpace(text), "\r\n", "\n"), "\n")
	pdf.SetFont("Helvetica", "B", letterSize+2)
	pdf.MultiCell(0, lh+1, tr(lines[0]), "", "L", false)
	pdf.SetFont("Helvetica", "", letterSize)
	for _, line := range lines[1:] {
		if strings.TrimSpace(line) == "" {
			pdf.Ln(lh / 2)
			continue
		}
		pdf.MultiCell(0, lh, tr(line), "", "L", false)
	}
	return finishPacket(pdf, tr, exhibits, pdf.PageNo() == 1)
}

func finishPacket(pdf *fpdf.Fpdf, tr func(string) string, exhibits []exhibit, fits bool) ([]byte, bool, error) {
	for _, ex := range exhibits {
		renderExhibit(pdf, tr, ex)
	}
	if err := pdf.Error(); err != nil {
		return nil, false, fmt.Errorf("render the rebuttal packet: %w", err)
	}
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, false, fmt.Errorf("write the rebuttal packet: %w", err)
	}
	return buf.Bytes(), fits, nil
}

func renderExhibit(pdf *fpdf.Fpdf, tr func(string) string, ex exhibit) {
	const lh = 5.2
	pdf.AddPage()
	pdf.SetFont("Helvetica", "B", 14)
	pdf.MultiCell(0, 7, tr(fmt.Sprintf("Exhibit %d — %s", ex.Number, ex.Title)), "", "L", false)
	pdf.SetFont("Helvetica", "I", bodyFont)
	pdf.MultiCell(0, lh, tr("What it proves: "+ex.Proves), "", "L", false)
	pdf.Ln(2)
	pdf.SetFont("Helvetica", "", bodyFont)
	for _, p := range ex.Paragraphs {
		pdf.MultiCell(0, lh, tr(p), "", "L", false)
		pdf.Ln(1.5)
	}
	if t := ex.Table; t != nil && len(t.Rows) > 0 {
		header := func() {
			pdf.SetFont("Helvetica", "B", bodyFont)
			for i, h := range t.Header {
				pdf.CellFormat(t.Widths[i], 6.5, tr(fitCell(pdf, tr, h, t.Widths[i])), "1", 0, "L", false, 0, "")
			}
			pdf.Ln(-1)
			pdf.SetFont("Helvetica", "", bodyFont)
		}
		header()
		_, pageH := pdf.GetPageSize()
		for _, row := range t.Rows {
			if pdf.GetY()+6.5 > pageH-pageMargin {
				pdf.AddPage()
				header()
			}
			for i, cell := range row {
				pdf.CellFormat(t.Widths[i], 6.5, tr(fitCell(pdf, tr, cell, t.Widths[i])), "1", 0, "L", false, 0, "")
			}
			pdf.Ln(-1)
		}
		if t.Omitted > 0 {
			pdf.Ln(1.5)
			pdf.MultiCell(0, lh, tr(fmt.Sprintf("%d further entries are on record and available on request.", t.Omitted)), "", "L", false)
		}
	}
}

// fitCell cuts s so it fits width mm (with padding), ending in "…".
func fitCell(pdf *fpdf.Fpdf, tr func(string) string, s string, width float64) string {
	limit := width - 2.2
	if pdf.GetStringWidth(tr(s)) <= limit {
		return s
	}
	r := []rune(s)
	for len(r) > 0 && pdf.GetStringWidth(tr(string(r)+"…")) > limit {
		r = r[:len(r)-1]
	}
	return string(r) + "…"
}

var pdfcpuOnce sync.Once

// PDFConfig is pdfcpu's configuration, without its config directory (no
// files written to the user's home).
func PDFConfig() *model.Configuration {
	pdfcpuOnce.Do(api.DisableConfigDir)
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationRelaxed
	return conf
}

// CountPages validates a PDF with pdfcpu and returns its page count.
func CountPages(pdf []byte) (int, error) {
	n, err := api.PageCount(bytes.NewReader(pdf), PDFConfig())
	if err != nil {
		return 0, fmt.Errorf("count the pages of a PDF: %w", err)
	}
	return n, nil
}

// packetWithin renders the packet and, while it has limit pages or more,
// renders it again with every exhibit's table and paragraphs halved (the
// rows left out are counted below each table), up to four times.
func packetWithin(asm assembly, created time.Time, limit int) ([]byte, int, error) {
	exhibits := asm.Exhibits
	for round := 0; ; round++ {
		packet, err := renderPacket(asm.Letter, exhibits, created)
		if err != nil {
			return nil, 0, err
		}
		pages, err := CountPages(packet)
		if err != nil {
			return nil, 0, err
		}
		if pages < limit || round == 4 {
			return packet, pages, nil
		}
		exhibits = shrinkExhibits(exhibits)
	}
}

func shrinkExhibits(in []exhibit) []exhibit {
	out := make([]exhibit, len(in))
	for i, ex := range in {
		if len(ex.Paragraphs) > 2 {
			ex.Paragraphs = append(ex.Paragraphs[:len(ex.Paragraphs)/2:len(ex.Paragraphs)/2],
				fmt.Sprintf("%d further entries are on record and available on request.", len(in[i].Paragraphs)-len(in[i].Paragraphs)/2))
		}
		for j, p := range ex.Paragraphs {
			if r := []rune(p); len(r) > 1200 {
				ex.Paragraphs[j] = string(r[:1199]) + "…"
			}
		}
		if t := ex.Table; t != nil && len(t.Rows) > 10 {
			cp := *t
			keep := len(t.Rows) / 2
			cp.Rows = t.Rows[len(t.Rows)-keep:] // the latest rows
			cp.Omitted = t.Omitted + len(t.Rows) - keep
			ex.Table = &cp
		}
		out[i] = ex
	}
	return out
}
