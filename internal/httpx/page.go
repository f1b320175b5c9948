package httpx

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/errs"
)

// Page limits.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// List is the one list shape: {"data": [...], "next_cursor": "..."|null}.
type List[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

// PageRequest is a parsed limit and cursor.
type PageRequest struct {
	Limit  int
	Cursor string // raw opaque cursor; decode with DecodeCursor
}

// ParsePage reads limit (default 50, at most 200) and cursor.
func ParsePage(c echo.Context) (PageRequest, error) {
	p := PageRequest{Limit: DefaultLimit, Cursor: c.QueryParam("cursor")}
	if s := c.QueryParam("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return p, errs.Coded(errs.EINVALID, "invalid_limit", "limit must be a whole number from 1 to %d", MaxLimit)
		}
		p.Limit = n
	}
	return p, nil
}

// EncodeCursor makes an opaque cursor from v (the last row's sort key).
func EncodeCursor(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a cursor made by EncodeCursor into dst. An empty cursor
// leaves dst untouched and returns false.
func DecodeCursor(s string, dst any) (bool, error) {
	if s == "" {
		return false, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, dst)
	}
	if err != nil {
		return false, errs.Coded(errs.EINVALID, "invalid_cursor", "cursor is not one this API issued")
	}
	return true, nil
}

// NewList builds a List from rows fetched with limit+1: the extra row, if
// present, means there is a next page, whose cursor key derives from the
// last row kept.
func NewList[T any](rows []T, limit int, key func(T) any) List[T] {
	out := List[T]{Data: rows}
	if out.Data == nil {
		out.Data = []T{}
	}
	if len(rows) > limit {
		out.Data = rows[:limit]
		cur := EncodeCursor(key(out.Data[limit-1]))
		out.NextCursor = &cur
	}
	return out
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
