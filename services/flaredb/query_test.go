package flaredb

import (
	"net/url"
	"reflect"
	"testing"
)

func TestParseQuery(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want url.Values
	}{
		// The seed's example, verbatim: ';' belongs to the value.
		{"start=config:&end=config;&&namespace=system", url.Values{"start": {"config:"}, "end": {"config;"}, "namespace": {"system"}}},
		{"start=a%26b&end=c+d", url.Values{"start": {"a&b"}, "end": {"c d"}}},
		{"limit=10&limit=20&flag", url.Values{"limit": {"10", "20"}, "flag": {""}}},
		{"", url.Values{}},
	} {
		got, err := parseQuery(tc.raw)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseQuery(%q) = %v, %v; want %v", tc.raw, got, err, tc.want)
		}
	}
	// What Go's own parser would do with the seed's example: lose "end".
	if std, _ := url.ParseQuery("start=config:&end=config;&&namespace=system"); std.Has("end") {
		t.Fatalf("url.ParseQuery kept end=%q; the reason for parseQuery is gone", std.Get("end"))
	}
	if _, err := parseQuery("start=%zz"); err == nil {
		t.Error("a bad escape is accepted")
	}
}
