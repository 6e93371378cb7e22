package rest

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"

	"github.com/photoncloud/photon/internal/apierr"
)

// Query parses r's query string strictly: malformed escapes and parameters
// the route does not know are VALIDATION_ERRORs (url.Query would drop the
// first silently and a typo like ?prefx= would list everything).
func Query(r *http.Request, known ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, apierr.Validation("query", apierr.Format, "malformed query string: %v", err)
	}
	allowed := map[string]bool{}
	for _, k := range known {
		allowed[k] = true
	}
	var unknown []string
	for k := range q {
		if !allowed[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, apierr.Validation(unknown[0], apierr.Unknown, "unknown query parameter %s", unknown[0])
	}
	return q, nil
}

// Limit reads the "limit" parameter: def when absent, else an integer in
// [1, max].
func Limit(q url.Values, def, max int) (int, error) {
	s := q.Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, apierr.Validation("limit", apierr.Range, "limit must be an integer from 1 to %d", max)
	}
	return n, nil
}
