package disputes

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// Register adds the workbench's routes to the API group:
//
//	GET   /cases/:id/evidence             the workbench document            facts:read (it shows the customer's facts)
//	POST  /cases/:id/evidence/assemble    build or rebuild the draft        disputes:work (?overwrite=true drops the analyst's edits)
//	PATCH /cases/:id/evidence             {"fields": {"<field>": "…"}, "version": n}  disputes:work (version optional: 409 when stale)
//	GET   /cases/:id/evidence/packet.pdf  the rebuttal packet               facts:read
//
// Assembly and edits are audited (evidence.assemble, evidence.edit) and
// recorded on the case's timeline.
func (w *Workbench) Register(g *echo.Group) {
	read := auth.Require(auth.PermFactsRead)
	work := auth.Require(auth.PermDisputesWork)
	g.GET("/cases/:id/evidence", w.handleEvidence, read)
	g.POST("/cases/:id/evidence/assemble", w.handleAssemble, work)
	g.PATCH("/cases/:id/evidence", w.handlePatch, work)
	g.GET("/cases/:id/evidence/packet.pdf", w.handlePacket, read)
}

func actorOf(c echo.Context) (string, error) {
	p, ok := auth.FromContext(c.Request().Context())
	if !ok {
		return "", errs.New(errs.EUNAUTHORIZED, "authentication required")
	}
	return p.Actor(), nil
}

func (w *Workbench) handleEvidence(c echo.Context) error {
	doc, err := w.Evidence(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, doc)
}

func (w *Workbench) handleAssemble(c echo.Context) error {
	actor, err := actorOf(c)
	if err != nil {
		return err
	}
	var opts AssembleOptions
	if v := c.QueryParam("overwrite"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errs.Coded(errs.EINVALID, "invalid_overwrite", "overwrite must be true or false")
		}
		opts.Overwrite = b
	}
	doc, err := w.Assemble(c.Request().Context(), c.Param("id"), actor, opts)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, doc)
}

// patchRequest is the body of PATCH /cases/{id}/evidence.
type patchRequest struct {
	Fields map[string]string `json:"fields"`
	// Version, when given, is the draft version the edit was made on: a
	// draft that moved on since is 409 evidence_draft_changed.
	Version *int64 `json:"version"`
}

func (w *Workbench) handlePatch(c echo.Context) error {
	actor, err := actorOf(c)
	if err != nil {
		return err
	}
	var req patchRequest
	if err := httpx.Bind(c, &req); err != nil {
		return err
	}
	var doc EvidenceDocument
	if req.Version != nil {
		doc, err = w.PatchVersion(c.Request().Context(), c.Param("id"), *req.Version, req.Fields, actor)
	} else {
		doc, err = w.Patch(c.Request().Context(), c.Param("id"), req.Fields, actor)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, doc)
}

func (w *Workbench) handlePacket(c echo.Context) error {
	b, err := w.Packet(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Content-Disposition", `inline; filename="evidence-`+c.Param("id")+`.pdf"`)
	return c.Blob(http.StatusOK, "application/pdf", b)
}
