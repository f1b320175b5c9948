package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/pan"
)

// factsImportBatch is how many lines the importer reads before keeping them:
// the API's batch limit, so an import behaves like a client of the API.
const factsImportBatch = disputes.MaxFactsPerBatch

// factsImportShown is how many rejected lines the summary names.
const factsImportShown = 10

// factColumns are the CSV columns a facts import understands, besides the
// customer column.
var factColumns = []string{"id", "kind", "occurred_at", "ip", "device_id", "device_fingerprint", "account_id",
	"user_agent", "policy_key", "policy_version", "channel", "template", "data"}

func factsCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	const use = "usage: recourse facts import [--customer-column customer] [--format csv|jsonl] FILE.csv|FILE.jsonl"
	if len(args) == 0 || args[0] != "import" {
		return errors.New(use)
	}
	fs := flag.NewFlagSet("facts import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	open := dbFlags(fs, getenv)
	customerCol := fs.String("customer-column", "customer", "CSV column (or JSONL field) holding the customer id")
	format := fs.String("format", "", "csv or jsonl (default: from the file's extension; .ndjson is jsonl)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New(use)
	}
	path := fs.Arg(0)
	if *format == "" {
		switch strings.ToLower(filepath.Ext(path)) {
		case ".csv":
			*format = "csv"
		case ".jsonl", ".ndjson":
			*format = "jsonl"
		default:
			return fmt.Errorf("cannot tell the format of %s from its extension: pass --format csv or --format jsonl", path)
		}
	}
	if *format != "csv" && *format != "jsonl" {
		return fmt.Errorf("--format must be csv or jsonl, not %q", *format)
	}
	total, err := countLines(path, *format == "csv")
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()

	ctx = cliContext(ctx, getenv)
	d, err := openMigrated(ctx, open)
	if err != nil {
		return err
	}
	defer d.Close()
	store := disputes.NewFactStore(d, clock.System{}).WithAudit(audit.New(d, clock.System{}))
	imp := &factImporter{put: store.Put, customerCol: *customerCol, total: total, progress: stderr}
	if *format == "csv" {
		err = imp.readCSV(ctx, f)
	} else {
		err = imp.readJSONL(ctx, f)
	}
	imp.summary(stdout)
	if err != nil {
		return err
	}
	if len(imp.rejected) > 0 {
		return fmt.Errorf("%d of %d lines rejected (the others are kept; fix and import the file again: kept facts count as duplicates)", len(imp.rejected), imp.lines)
	}
	return nil
}

// countLines counts the data lines of the file for the progress line (a CSV
// header is not one; a quoted field spanning lines makes this an estimate).
func countLines(path string, header bool) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	if header && n > 0 {
		n--
	}
	return n, nil
}

// lineRejection is a line the import refused, with why.
type lineRejection struct {
	Line    int
	Code    string
	Message string
}

// pendingFact is one fact read, waiting for its batch.
type pendingFact struct {
	line     int
	customer string
	raw      json.RawMessage
}

// factImporter reads facts and keeps them in batches of up to 1,000 lines,
// one Put per customer of a batch, and counts what happened.
type factImporter struct {
	put         func(ctx context.Context, customerID string, facts []json.RawMessage) (disputes.PutResult, error)
	customerCol string
	total       int
	progress    io.Writer

	batch                []pendingFact
	lines, flushedLines  int
	accepted, duplicates int
	rejected             []lineRejection
}

func (im *factImporter) reject(line int, code, format string, args ...any) {
	im.rejected = append(im.rejected, lineRejection{Line: line, Code: code, Message: pan.Mask(fmt.Sprintf(format, args...))})
}

// add takes one line's fact, kept with its batch.
func (im *factImporter) add(p pendingFact) { im.batch = append(im.batch, p) }

// lineDone keeps the batch once every 1,000 lines read.
func (im *factImporter) lineDone(ctx context.Context) error {
	if im.lines%factsImportBatch == 0 {
		return im.flush(ctx)
	}
	return nil
}

// flush keeps the batch: the facts of each customer in one Put, in order of
// first appearance, and prints a progress line.
func (im *factImporter) flush(ctx context.Context) error {
	if len(im.batch) == 0 && im.lines == im.flushedLines {
		return nil
	}
	im.flushedLines = im.lines
	var order []string
	groups := map[string][]pendingFact{}
	for _, p := range im.batch {
		if _, ok := groups[p.customer]; !ok {
			order = append(order, p.customer)
		}
		groups[p.customer] = append(groups[p.customer], p)
	}
	for _, c := range order {
		g := groups[c]
		raws := make([]json.RawMessage, len(g))
		for i, p := range g {
			raws[i] = p.raw
		}
		res, err := im.put(ctx, c, raws)
		if err != nil {
			return fmt.Errorf("keep the facts of lines %d–%d (customer %s): %w", g[0].line, g[len(g)-1].line, pan.Mask(c), err)
		}
		im.accepted += res.Accepted
		im.duplicates += res.Duplicates
		for _, r := range res.Rejected {
			im.reject(g[r.Index].line, r.Error.Code, "%s", r.Error.Message)
		}
	}
	im.batch = im.batch[:0]
	fmt.Fprintf(im.progress, "imported %d/%d lines (accepted %d, duplicates %d, rejected %d)\n",
		im.lines, im.total, im.accepted, im.duplicates, len(im.rejected))
	return nil
}

// readJSONL reads one fact per line, each a JSON object with the customer in
// the customer column's field; blank lines are skipped.
func (im *factImporter) readJSONL(ctx context.Context, r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		im.lines++
		im.jsonlLine(line, b)
		if err := im.lineDone(ctx); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read line %d: %w", line+1, err)
	}
	return im.flush(ctx)
}

// jsonlLine reads one JSONL line into the batch, or rejects it.
func (im *factImporter) jsonlLine(line int, b []byte) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		im.reject(line, "fact_malformed", "the line is not a JSON object")
		return
	}
	var customer string
	if err := json.Unmarshal(obj[im.customerCol], &customer); err != nil || strings.TrimSpace(customer) == "" {
		im.reject(line, "customer_required", "the line has no %q field holding the customer id", im.customerCol)
		return
	}
	delete(obj, im.customerCol)
	raw, err := json.Marshal(obj)
	if err != nil {
		im.reject(line, "fact_malformed", "the line is not a JSON object")
		return
	}
	im.add(pendingFact{line: line, customer: customer, raw: raw})
}

// readCSV reads a header row naming the customer column and any of
// factColumns, then one fact per row; an empty cell is an absent field.
func (im *factImporter) readCSV(ctx context.Context, r io.Reader) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("read the CSV header: %w", err)
	}
	known := map[string]bool{im.customerCol: true}
	for _, c := range factColumns {
		known[c] = true
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if !known[h] {
			return fmt.Errorf("CSV column %q is not one of %s, %s", h, im.customerCol, strings.Join(factColumns, ", "))
		}
		col[h] = i
	}
	if _, ok := col[im.customerCol]; !ok {
		return fmt.Errorf("the CSV header has no customer column %q (see --customer-column)", im.customerCol)
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return fmt.Errorf("read CSV: %w", err)
			}
			im.lines++
			im.reject(pe.StartLine, "csv_malformed", "%v", pe.Err)
		} else {
			im.lines++
			line, _ := cr.FieldPos(0)
			im.csvRow(line, len(header), col, rec)
		}
		if err := im.lineDone(ctx); err != nil {
			return err
		}
	}
	return im.flush(ctx)
}

// csvRow reads one CSV row into the batch, or rejects it.
func (im *factImporter) csvRow(line, width int, col map[string]int, rec []string) {
	if len(rec) != width {
		im.reject(line, "csv_malformed", "the row has %d fields, the header %d", len(rec), width)
		return
	}
	cell := func(name string) string {
		if i, ok := col[name]; ok {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	customer := cell(im.customerCol)
	if customer == "" {
		im.reject(line, "customer_required", "the %q cell is empty", im.customerCol)
		return
	}
	in := disputes.FactInput{ID: cell("id"), Kind: disputes.FactKind(cell("kind")), OccurredAt: cell("occurred_at"),
		IP: cell("ip"), DeviceID: cell("device_id"), DeviceFingerprint: cell("device_fingerprint"), AccountID: cell("account_id"),
		UserAgent: cell("user_agent"), Channel: cell("channel"), Template: cell("template")}
	if k, v := cell("policy_key"), cell("policy_version"); k != "" || v != "" {
		in.Policy = &disputes.PolicyRef{Key: k, Version: v}
	}
	if data := cell("data"); data != "" {
		if !json.Valid([]byte(data)) {
			im.reject(line, "fact_data_invalid", "data is not valid JSON")
			return
		}
		in.Data = json.RawMessage(data)
	}
	raw, err := json.Marshal(in)
	if err != nil {
		im.reject(line, "fact_malformed", "the row cannot be read as a fact: %v", err)
		return
	}
	im.add(pendingFact{line: line, customer: customer, raw: raw})
}

// summary prints what the import did, naming the first rejected lines.
func (im *factImporter) summary(w io.Writer) {
	sort.SliceStable(im.rejected, func(i, j int) bool { return im.rejected[i].Line < im.rejected[j].Line })
	fmt.Fprintf(w, "facts import: %d lines: %d accepted, %d duplicates, %d rejected\n", im.lines, im.accepted, im.duplicates, len(im.rejected))
	for i, r := range im.rejected {
		if i == factsImportShown {
			fmt.Fprintf(w, "  … and %d more rejected lines\n", len(im.rejected)-factsImportShown)
			break
		}
		fmt.Fprintf(w, "  line %d: %s: %s\n", r.Line, r.Code, r.Message)
	}
}
