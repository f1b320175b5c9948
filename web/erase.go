package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/privacy"
)

// eraseForm is the Customer 360's erasure form: why (the request's
// reference, kept in the audit log), the customer id typed again as a
// confirmation, and whether to go ahead over open disputes.
type eraseForm struct {
	Reason  string
	Confirm string
	Force   bool
}

// eraseCustomer is POST /customers/:id/erase (customers:erase), as
// POST /api/v1/customers/{id}/erase and `recourse customer erase`: the
// same privacy.Eraser, audited as the signed-in admin. Erasure cannot be
// undone, so the form asks for the customer id typed again; a refusal
// (no reason, open dispute without force) shows the page again with the
// form as it was sent.
func (con *Console) eraseCustomer(c echo.Context) error {
	if con.opt.Eraser == nil {
		return con.renderError(c, http.StatusServiceUnavailable, "Erasure is not available on this console.")
	}
	id := c.Param("id")
	form := eraseForm{Reason: c.FormValue("reason"), Confirm: strings.TrimSpace(c.FormValue("confirm")), Force: c.FormValue("force") == "on"}
	var err error
	if form.Confirm != id {
		err = errs.Coded(errs.EINVALID, "confirmation_mismatch", "type the customer id %s to confirm the erasure", id)
	} else {
		_, err = con.opt.Eraser.Erase(c.Request().Context(), privacy.Request{CustomerID: id, Reason: form.Reason, Force: form.Force})
	}
	if err != nil {
		e, ok := errs.As(err)
		if !ok || e.Kind == errs.EINTERNAL {
			return con.fail(c, err)
		}
		return con.showCustomer(c, statusOf(err), page{Error: e.Message, ErrorCode: e.Code}, form)
	}
	return c.Redirect(http.StatusSeeOther, "/customers/"+url.PathEscape(id)+"?done=erased")
}
