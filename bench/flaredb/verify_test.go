package main

import (
	"slices"
	"testing"
)

func TestExpectationCheck(t *testing.T) {
	value := func(k string) string { return "v" + k }
	tests := []struct {
		name          string
		acked, failed []string
		rows          [][2]string // in the order the replica returns them
		want          rowCheck    // the counts only
		ok            bool
	}{
		{name: "all there", acked: []string{"a", "b"}, rows: [][2]string{{"a", "va"}, {"b", "vb"}},
			want: rowCheck{rows: 2}, ok: true},
		{name: "a failed insert may be there or not", acked: []string{"a"}, failed: []string{"b", "c"}, rows: [][2]string{{"a", "va"}, {"b", "vb"}},
			want: rowCheck{rows: 2, unknown: 1}, ok: true},
		{name: "an acknowledged insert is missing", acked: []string{"a", "b"}, rows: [][2]string{{"b", "vb"}},
			want: rowCheck{rows: 1, missing: 1}},
		{name: "a row holds another value", acked: []string{"a"}, rows: [][2]string{{"a", "vx"}},
			want: rowCheck{rows: 1, wrong: 1}},
		{name: "a row no client inserted", acked: []string{"a"}, rows: [][2]string{{"a", "va"}, {"z", "vz"}},
			want: rowCheck{rows: 2, unexpected: 1}},
		{name: "a row twice", acked: []string{"a"}, rows: [][2]string{{"a", "va"}, {"a", "va"}},
			want: rowCheck{rows: 2, unexpected: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newExpectation(&keyLog{acked: tt.acked, failed: tt.failed})
			rc := rowCheck{count: int64(len(tt.rows))}
			err := e.check(&rc, value, func(yield func(k, v string)) error {
				for _, r := range tt.rows {
					yield(r[0], r[1])
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			got := rowCheck{rows: rc.rows, missing: rc.missing, wrong: rc.wrong, unknown: rc.unknown, unexpected: rc.unexpected}
			if got.rows != tt.want.rows || got.missing != tt.want.missing || got.wrong != tt.want.wrong ||
				got.unknown != tt.want.unknown || got.unexpected != tt.want.unexpected {
				t.Errorf("check = %+v, want %+v", got, tt.want)
			}
			if rc.ok() != tt.ok {
				t.Errorf("ok() = %v, want %v (examples %v)", rc.ok(), tt.ok, rc.examples)
			}
		})
	}
}

// Identical rows give identical digests, and any difference changes it.
func TestDigest(t *testing.T) {
	digest := func(rows ...[2]string) string {
		var rc rowCheck
		e := newExpectation(&keyLog{})
		_ = e.check(&rc, func(string) string { return "" }, func(yield func(k, v string)) error {
			for _, r := range rows {
				yield(r[0], r[1])
			}
			return nil
		})
		return rc.digest
	}
	base := digest([2]string{"a", "1"}, [2]string{"b", "2"})
	if again := digest([2]string{"a", "1"}, [2]string{"b", "2"}); again != base {
		t.Errorf("same rows, digests %s and %s", base, again)
	}
	for _, other := range [][][2]string{
		{{"a", "1"}},
		{{"a", "1"}, {"b", "3"}},
		{{"a", "1b"}, {"", "2"}}, // the separator keeps k and v apart
	} {
		if d := digest(other...); d == base {
			t.Errorf("rows %v have the digest of different rows", other)
		}
	}
}

func TestInterleave(t *testing.T) {
	ts := []target{{id: "f1", side: 'f'}, {id: "f32", side: 'f'}, {id: "p1", side: 'p'}, {id: "p32", side: 'p'}}
	var got []string
	for _, t := range interleave(ts) {
		got = append(got, t.id)
	}
	if want := []string{"f1", "p1", "f32", "p32"}; !slices.Equal(got, want) {
		t.Errorf("interleave = %v, want %v", got, want)
	}
}
