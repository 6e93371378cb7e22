package ids

import (
	"sort"
	"testing"
	"time"
)

func TestNewIsValidAndSortable(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var got []string
	for i := 0; i < 100; i++ {
		got = append(got, "vm-"+ULID(t0.Add(time.Duration(i)*time.Millisecond)))
	}
	if !sort.StringsAreSorted(got) {
		t.Fatal("IDs from increasing times do not sort in order")
	}
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		id := New("vpc")
		if !Valid("vpc", id) {
			t.Fatalf("Valid(%q) = false", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "vpc-", "vm-01jd3k0000000000000000000a", "vpc-UPPERCASE000000000000000", "vpc-8zzzzzzzzzzzzzzzzzzzzzzzzz"} {
		if Valid("vpc", bad) {
			t.Errorf("Valid(%q) = true", bad)
		}
	}
}
