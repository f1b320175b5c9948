// Package export streams any keyset-paged list as CSV (RFC 4180, UTF-8,
// header row) or JSON lines, page by page, so a million rows need the
// memory of one page. CSV cells that a spreadsheet would read as a formula
// (starting with = + - @, tab or carriage return) are neutralised with a
// leading apostrophe (OWASP "CSV injection").
package export

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// Format is an export format.
type Format string

// Formats.
const (
	JSON  Format = "" // not an export: the API's usual JSON page
	CSV   Format = "csv"
	JSONL Format = "jsonl"
)

// FormatOf reads ?format=csv|jsonl|json, else the Accept header (text/csv,
// application/x-ndjson or application/jsonl). An unknown format is EINVALID.
func FormatOf(c echo.Context) (Format, error) {
	switch f := c.QueryParam("format"); f {
	case "csv":
		return CSV, nil
	case "jsonl", "ndjson":
		return JSONL, nil
	case "json":
		return JSON, nil
	case "":
	default:
		return JSON, errs.Coded(errs.EINVALID, "invalid_format", "format must be csv, jsonl or json, not %q", f)
	}
	for _, part := range strings.Split(c.Request().Header.Get(echo.HeaderAccept), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "text/csv":
			return CSV, nil
		case "application/x-ndjson", "application/jsonl":
			return JSONL, nil
		case "application/json":
			return JSON, nil
		}
	}
	return JSON, nil
}

// Column is one CSV column: its header and how to read it off a row.
type Column[T any] struct {
	Name  string
	Value func(T) string
}

// Pager returns the page after cursor ("" for the first) and the next
// cursor ("" after the last page).
type Pager[T any] func(ctx context.Context, cursor string) (rows []T, next string, err error)

// Neutralise makes s safe to open in a spreadsheet: a cell that starts with
// = + - @ or a tab or carriage return gets a leading apostrophe.
func Neutralise(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// Write streams every page of pages to w in format f (CSV or JSONL). Rows
// are JSON-encoded as they are for JSONL; cols are the CSV columns.
func Write[T any](ctx context.Context, w io.Writer, f Format, cols []Column[T], pages Pager[T]) (int, error) {
	var (
		cw   *csv.Writer
		enc  *json.Encoder
		n    int
		cell = make([]string, len(cols))
	)
	flush := func() error { return nil }
	switch f {
	case CSV:
		cw = csv.NewWriter(w)
		for i, c := range cols {
			cell[i] = c.Name
		}
		if err := cw.Write(cell); err != nil {
			return 0, err
		}
		flush = func() error { cw.Flush(); return cw.Error() }
	case JSONL:
		enc = json.NewEncoder(w)
	default:
		return 0, fmt.Errorf("export: format %q is not a stream", f)
	}
	cursor := ""
	for {
		rows, next, err := pages(ctx, cursor)
		if err != nil {
			return n, err
		}
		for _, r := range rows {
			if cw != nil {
				for i, c := range cols {
					cell[i] = Neutralise(c.Value(r))
				}
				if err := cw.Write(cell); err != nil {
					return n, err
				}
			} else if err := enc.Encode(r); err != nil {
				return n, err
			}
			n++
		}
		if err := flush(); err != nil {
			return n, err
		}
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		if next == "" || next == cursor || len(rows) == 0 {
			return n, nil
		}
		cursor = next
	}
}

// Respond streams the export as the HTTP response, as an attachment named
// name.csv or name.jsonl. Once the first byte is out the status cannot
// change: an error after that ends the body early and is logged by the
// caller (the returned error), which is why the last line of a complete
// export is always a whole row.
func Respond[T any](c echo.Context, f Format, name string, cols []Column[T], pages Pager[T]) error {
	ct := "text/csv; charset=utf-8"
	if f == JSONL {
		ct = "application/x-ndjson"
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, ct)
	h.Set(echo.HeaderContentDisposition, mime.FormatMediaType("attachment", map[string]string{"filename": name + "." + string(f)}))
	h.Set("Cache-Control", "no-store")
	// Check the first page before committing to 200, so a bad cursor or a
	// database that is down still gets the API's error.
	first, next, err := pages(c.Request().Context(), "")
	if err != nil {
		return err
	}
	c.Response().WriteHeader(http.StatusOK)
	// The server's write timeout bounds a whole response, and a million
	// rows take longer than that to stream: each page gets a fresh window
	// instead, so a big export finishes while a client that stops reading
	// is still cut off.
	rc := http.NewResponseController(c.Response().Writer)
	extend := func() { _ = rc.SetWriteDeadline(time.Now().Add(PageWriteWindow)) }
	extend()
	served := false
	_, err = Write(c.Request().Context(), c.Response(), f, cols, func(ctx context.Context, cursor string) ([]T, string, error) {
		extend()
		if !served {
			served = true
			return first, next, nil
		}
		return pages(ctx, cursor)
	})
	return err
}

// PageWriteWindow is how long one page of an export may take to read and
// write before the connection is dropped (a var so tests can shorten it).
var PageWriteWindow = 30 * time.Second

// Pages adapts a keyset-paged List (the API's one list shape) to a Pager,
// reading the largest page the API allows.
func Pages[T any](list func(ctx context.Context, page httpx.PageRequest) (httpx.List[T], error)) Pager[T] {
	return func(ctx context.Context, cursor string) ([]T, string, error) {
		l, err := list(ctx, httpx.PageRequest{Limit: httpx.MaxLimit, Cursor: cursor})
		if err != nil {
			return nil, "", err
		}
		next := ""
		if l.NextCursor != nil {
			next = *l.NextCursor
		}
		return l.Data, next, nil
	}
}
