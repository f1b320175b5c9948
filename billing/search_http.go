package billing

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/errs"
)

// searchCustomers is GET /customers?q=&limit=&cursor=. An empty or
// over-long q, or a limit outside 1..MaxSearchLimit, answers 400.
func (s *Store) searchCustomers(c echo.Context) error {
	in := CustomerSearch{Query: c.QueryParam("q"), Cursor: c.QueryParam("cursor")}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxSearchLimit {
			return errs.Coded(errs.EINVALID, "invalid_limit", "limit must be a whole number from 1 to %d", MaxSearchLimit)
		}
		in.Limit = n
	}
	res, err := s.SearchCustomers(c.Request().Context(), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}
