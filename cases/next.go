package cases

import (
	"context"

	"github.com/recourse-hq/recourse/internal/httpx"
)

// NextAfter returns the case that follows case id in the list f (in
// f.Sort order), as if paging from it: what "open the next case in this
// queue" means. ok is false when id is the last one. Case id itself need not
// match f (it may have just left the queue, e.g. when it was assigned).
// ENOTFOUND for an unknown case id, EINVALID for a bad sort.
func (s *Service) NextAfter(ctx context.Context, f Filter, id string) (Case, bool, error) {
	cur, err := s.Get(ctx, id)
	if err != nil {
		return Case{}, false, err
	}
	if f.Sort == "" {
		f.Sort = SortCreatedDesc
	}
	col, _, _ := f.Sort.keyset()
	c := listCursor{Sort: f.Sort, ID: cur.ID, T: cur.CreatedAt.UTC(), Rank: cur.Priority.Rank()}
	switch col {
	case "updated_at":
		c.T = cur.UpdatedAt.UTC()
	case "sla_due":
		c.T = cur.SLA.NextDue().UTC()
	}
	l, err := s.List(ctx, f, httpx.PageRequest{Limit: 1, Cursor: httpx.EncodeCursor(c)})
	if err != nil || len(l.Data) == 0 {
		return Case{}, false, err
	}
	return l.Data[0], true, nil
}
