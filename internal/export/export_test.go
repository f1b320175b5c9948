package export

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

type item struct {
	ID   int    `json:"id"`
	Text string `json:"text"`
}

var cols = []Column[item]{
	{Name: "id", Value: func(i item) string { return strconv.Itoa(i.ID) }},
	{Name: "text", Value: func(i item) string { return i.Text }},
}

// pagesOf serves rows in pages of size.
func pagesOf(rows []item, size int) Pager[item] {
	return func(_ context.Context, cursor string) ([]item, string, error) {
		from := 0
		if cursor != "" {
			from, _ = strconv.Atoi(cursor)
		}
		to := min(from+size, len(rows))
		next := ""
		if to < len(rows) {
			next = strconv.Itoa(to)
		}
		return rows[from:to], next, nil
	}
}

func TestNeutralise(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"=HYPERLINK(\"http://x\")": "'=HYPERLINK(\"http://x\")",
		"+1":                       "'+1",
		"-2+3":                     "'-2+3",
		"@SUM(A1)":                 "'@SUM(A1)",
		"\tx":                      "'\tx",
		"\rx":                      "'\rx",
		"":                         "",
		"a=b":                      "a=b",
		"ada@example.com":          "ada@example.com",
		"'quoted":                  "'quoted",
		"1,2":                      "1,2",
	} {
		if got := Neutralise(in); got != want {
			t.Errorf("Neutralise(%q) = %q, want %q", in, got, want)
		}
	}
}

// RFC 4180: a header row, quotes doubled, commas, quotes and newlines in
// quoted cells, formulas neutralised, every page read exactly once.
func TestWriteCSV(t *testing.T) {
	t.Parallel()
	rows := []item{{1, "plain"}, {2, `say "hi", then`}, {3, "two\nlines"}, {4, "=cmd|' /C calc'!A0"}, {5, "€ ünïcode"}}
	var b bytes.Buffer
	n, err := Write(context.Background(), &b, CSV, cols, pagesOf(rows, 2))
	if err != nil || n != len(rows) {
		t.Fatalf("Write: %d rows, %v", n, err)
	}
	want := "id,text\n1,plain\n2,\"say \"\"hi\"\", then\"\n3,\"two\nlines\"\n4,'=cmd|' /C calc'!A0\n5,€ ünïcode\n"
	if b.String() != want {
		t.Fatalf("csv:\n%q\nwant\n%q", b.String(), want)
	}
	recs, err := csv.NewReader(strings.NewReader(b.String())).ReadAll()
	if err != nil || len(recs) != len(rows)+1 {
		t.Fatalf("not RFC 4180: %v (%d records)", err, len(recs))
	}
}

func TestWriteJSONL(t *testing.T) {
	t.Parallel()
	rows := []item{{1, "a"}, {2, "=b"}, {3, "c"}}
	var b bytes.Buffer
	if n, err := Write(context.Background(), &b, JSONL, cols, pagesOf(rows, 1)); err != nil || n != 3 {
		t.Fatalf("Write: %d, %v", n, err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines: %q", len(lines), b.String())
	}
	var got item
	if err := json.Unmarshal([]byte(lines[1]), &got); err != nil || got != rows[1] {
		t.Fatalf("line 2 = %q (%v): JSON lines keep values as they are", lines[1], err)
	}
}

func TestWriteEmptyAndErrors(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if n, err := Write(context.Background(), &b, CSV, cols, pagesOf(nil, 10)); err != nil || n != 0 || b.String() != "id,text\n" {
		t.Fatalf("empty: %d %v %q", n, err, b.String())
	}
	boom := errors.New("db down")
	calls := 0
	_, err := Write(context.Background(), io.Discard, CSV, cols, func(context.Context, string) ([]item, string, error) {
		calls++
		if calls == 2 {
			return nil, "", boom
		}
		return []item{{calls, "x"}}, "next", nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the pager's", err)
	}
	if _, err := Write(context.Background(), io.Discard, JSON, cols, pagesOf(nil, 1)); err == nil {
		t.Fatal("JSON is not a stream format")
	}
}

func TestFormatOf(t *testing.T) {
	t.Parallel()
	e := echo.New()
	for _, tc := range []struct {
		query, accept string
		want          Format
		bad           bool
	}{
		{"", "", JSON, false},
		{"format=csv", "", CSV, false},
		{"format=jsonl", "", JSONL, false},
		{"format=json", "text/csv", JSON, false},
		{"", "text/csv", CSV, false},
		{"", "text/html, text/csv;q=0.9", CSV, false},
		{"", "application/x-ndjson", JSONL, false},
		{"", "application/json", JSON, false},
		{"format=xlsx", "", JSON, true},
	} {
		req := httptest.NewRequest(http.MethodGet, "/x?"+tc.query, nil)
		if tc.accept != "" {
			req.Header.Set("Accept", tc.accept)
		}
		got, err := FormatOf(e.NewContext(req, httptest.NewRecorder()))
		if got != tc.want || (err != nil) != tc.bad {
			t.Errorf("%q %q: %q %v", tc.query, tc.accept, got, err)
		}
	}
}

// A million rows stream through with the memory of one page: the heap in
// use after the export is about what it was before.
func TestWriteMillionRowsFlatMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const total, size = 1_000_000, 500
	page := make([]item, size)
	pager := func(_ context.Context, cursor string) ([]item, string, error) {
		from := 0
		if cursor != "" {
			from, _ = strconv.Atoi(cursor)
		}
		for i := range page {
			page[i] = item{ID: from + i, Text: "customer@example.com"}
		}
		next := ""
		if from+size < total {
			next = strconv.Itoa(from + size)
		}
		return page, next, nil
	}
	cw := &countingWriter{}
	var peak uint64
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	sampled := Pager[item](func(ctx context.Context, cursor string) ([]item, string, error) {
		if cursor != "" {
			if n, _ := strconv.Atoi(cursor); n%100_000 == 0 {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
		return pager(ctx, cursor)
	})
	n, err := Write(context.Background(), cw, CSV, cols, sampled)
	if err != nil || n != total {
		t.Fatalf("%d rows, %v", n, err)
	}
	if cw.n < total*20 {
		t.Fatalf("only %d bytes written", cw.n)
	}
	if grew := int64(peak) - int64(base); grew > 8<<20 {
		t.Fatalf("heap grew by %d bytes over %d rows (%d bytes out): not streaming", grew, total, cw.n)
	}
	t.Logf("1M rows, %d MB out, heap in use grew by at most %d KB", cw.n>>20, (int64(peak)-int64(base))>>10)
}

type countingWriter struct{ n int }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

func TestRespond(t *testing.T) {
	t.Parallel()
	e := echo.New()
	rec := httptest.NewRecorder()
	c := e.NewContext(httptest.NewRequest(http.MethodGet, "/cases?format=csv", nil), rec)
	if err := Respond(c, CSV, "cases", cols, pagesOf([]item{{1, "@x"}}, 10)); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/csv; charset=utf-8" ||
		rec.Header().Get("Content-Disposition") != `attachment; filename=cases.csv` || rec.Body.String() != "id,text\n1,'@x\n" {
		t.Fatalf("%d %v %q", rec.Code, rec.Header(), rec.Body.String())
	}
	// A failing first page answers with the error, not a 200.
	rec = httptest.NewRecorder()
	c = e.NewContext(httptest.NewRequest(http.MethodGet, "/cases?format=csv", nil), rec)
	err := Respond(c, CSV, "cases", cols, func(context.Context, string) ([]item, string, error) { return nil, "", errors.New("down") })
	if err == nil || c.Response().Committed {
		t.Fatalf("err %v, committed %v", err, c.Response().Committed)
	}
}

// An export that takes longer than the server's write timeout still
// arrives whole, since each page renews the write deadline; a client that
// stops reading is still cut off after one page window.
func TestRespondOutlivesTheServerWriteTimeout(t *testing.T) {
	old := PageWriteWindow
	PageWriteWindow = 2 * time.Second
	t.Cleanup(func() { PageWriteWindow = old })
	rows := make([]item, 8)
	for i := range rows {
		rows[i] = item{ID: i + 1, Text: "row"}
	}
	slow := pagesOf(rows, 1)
	e := echo.New()
	e.GET("/export", func(c echo.Context) error {
		return Respond(c, CSV, "x", cols, func(ctx context.Context, cursor string) ([]item, string, error) {
			time.Sleep(150 * time.Millisecond) // 8 pages: 1.2 s, past the 500 ms timeout
			return slow(ctx, cursor)
		})
	})
	srv := httptest.NewUnstartedServer(e)
	srv.Config.WriteTimeout = 500 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/export")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("the export was cut off after %d bytes: %v", len(body), err)
	}
	if lines := strings.Count(string(body), "\n"); lines != 9 {
		t.Fatalf("%d lines, want the header and 8 rows:\n%s", lines, body)
	}
}
