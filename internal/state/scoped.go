package state

import "context"

// Owned is a record kept under its project ("<project>/<id>") that knows
// its org, project and id.
type Owned interface {
	Owner() (org, project, id string)
}

// ListScoped lists a collection of Owned records for a scope: one
// project's (a range read under its prefix), or, with project empty,
// everything filtered by org (when named); keep, if not nil, filters
// further. It reads pages until limit records are found or the list ends —
// bounded to 20 pages, so that a sparse filter cannot make one request read
// everything — and answers a token to continue after the last record.
func ListScoped[T Owned](ctx context.Context, c *Collection[T], org, project string, limit int, pageToken string, keep func(T) bool) ([]T, string, error) {
	idPrefix := ""
	if project != "" {
		idPrefix = project + "/"
	}
	out := []T{}
	token := pageToken
	for pages := 0; pages < 20; pages++ {
		page, err := c.List(ctx, idPrefix, limit, token)
		if err != nil {
			return nil, "", err
		}
		for _, it := range page.Items {
			o, _, _ := it.Value.Owner()
			if (org == "" || o == org) && (keep == nil || keep(it.Value)) {
				out = append(out, it.Value)
			}
		}
		token = page.NextPageToken
		if token == "" || len(out) >= limit {
			break
		}
	}
	if len(out) > limit {
		out = out[:limit]
		_, p, id := out[limit-1].Owner()
		token = EncodePageToken(c.Key(p+"/"+id) + "\x00")
	}
	return out, token, nil
}
