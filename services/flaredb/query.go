package flaredb

import (
	"net/url"
	"strings"
)

// parseQuery reads a URL query splitting on '&' only. Go's url.ParseQuery
// drops every pair that holds a ';' (an old separator), but the seed's own
// example, scan?start=config:&end=config;&&namespace=system, means a range
// that ends at "config;" — every key with the prefix "config:". Empty pairs
// (the "&&" there) are skipped, as ParseQuery skips them.
func parseQuery(raw string) (url.Values, error) {
	v := url.Values{}
	for _, pair := range strings.Split(raw, "&") {
		if pair == "" {
			continue
		}
		k, val, _ := strings.Cut(pair, "=")
		k, err := url.QueryUnescape(k)
		if err != nil {
			return nil, err
		}
		val, err = url.QueryUnescape(val)
		if err != nil {
			return nil, err
		}
		v[k] = append(v[k], val)
	}
	return v, nil
}
