package nightlight

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"
)

// ProjectLabel is the label that says which project a series belongs to.
const ProjectLabel = "project_id"

// Scope is what a request may read or write: every series (All), or the
// series of Projects.
type Scope struct {
	All      bool
	Projects []string
}

type scopeKey struct{}

func withScope(ctx context.Context, s Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

// errNoScope is a read or write through the scoped storage without a scope
// in its context: a wiring bug, refused rather than served unrestricted.
var errNoScope = errors.New("nightlight: request has no tenant scope")

// restrict adds the scope's project matcher to a selector's matchers, as
// Mimir's tenant isolation does: whatever else the selector says, it can
// only match series of the caller's projects.
func restrict(ctx context.Context, ms []*labels.Matcher) ([]*labels.Matcher, error) {
	s, ok := ctx.Value(scopeKey{}).(Scope)
	if !ok {
		return nil, errNoScope
	}
	if s.All {
		return ms, nil
	}
	out := make([]*labels.Matcher, len(ms), len(ms)+1)
	copy(out, ms)
	return append(out, s.matcher()), nil
}

// matcher selects the scope's projects. A scope of no projects matches a
// value no project id can have (an empty one would match series without
// the label: the platform's own).
func (s Scope) matcher() *labels.Matcher {
	switch len(s.Projects) {
	case 0:
		return labels.MustNewMatcher(labels.MatchEqual, ProjectLabel, "\x00")
	case 1:
		return labels.MustNewMatcher(labels.MatchEqual, ProjectLabel, s.Projects[0])
	}
	quoted := make([]string, len(s.Projects))
	for i, p := range s.Projects {
		quoted[i] = regexp.QuoteMeta(p)
	}
	return labels.MustNewMatcher(labels.MatchRegexp, ProjectLabel, strings.Join(quoted, "|"))
}

// scopedStorage is the TSDB as one request's scope lets it see it. It
// holds the storage in a field rather than embedding it, so that no other
// interface of the TSDB (one a caller might type-assert to) reaches the
// unrestricted data.
type scopedStorage struct {
	inner storage.SampleAndChunkQueryable
}

func (s scopedStorage) Querier(mint, maxt int64) (storage.Querier, error) {
	q, err := s.inner.Querier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return scopedQuerier{q}, nil
}

func (s scopedStorage) ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error) {
	q, err := s.inner.ChunkQuerier(mint, maxt)
	if err != nil {
		return nil, err
	}
	return scopedChunkQuerier{scopedLabels{q}, q}, nil
}

// scopedLabels restricts label name and value lookups.
type scopedLabels struct{ inner storage.LabelQuerier }

func (q scopedLabels) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	ms, err := restrict(ctx, ms)
	if err != nil {
		return nil, nil, err
	}
	return q.inner.LabelValues(ctx, name, hints, ms...)
}

func (q scopedLabels) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	ms, err := restrict(ctx, ms)
	if err != nil {
		return nil, nil, err
	}
	return q.inner.LabelNames(ctx, hints, ms...)
}

func (q scopedLabels) Close() error { return q.inner.Close() }

type scopedQuerier struct{ inner storage.Querier }

func (q scopedQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	ms, err := restrict(ctx, ms)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	return q.inner.Select(ctx, sortSeries, hints, ms...)
}

func (q scopedQuerier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return scopedLabels{q.inner}.LabelValues(ctx, name, hints, ms...)
}

func (q scopedQuerier) LabelNames(ctx context.Context, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return scopedLabels{q.inner}.LabelNames(ctx, hints, ms...)
}

func (q scopedQuerier) Close() error { return q.inner.Close() }

type scopedChunkQuerier struct {
	scopedLabels
	inner storage.ChunkQuerier
}

func (q scopedChunkQuerier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.ChunkSeriesSet {
	ms, err := restrict(ctx, ms)
	if err != nil {
		return storage.ErrChunkSeriesSet(err)
	}
	return q.inner.Select(ctx, sortSeries, hints, ms...)
}

// scopedExemplars restricts exemplar queries the same way.
type scopedExemplars struct{ inner storage.ExemplarQueryable }

func (s scopedExemplars) ExemplarQuerier(ctx context.Context) (storage.ExemplarQuerier, error) {
	q, err := s.inner.ExemplarQuerier(ctx)
	if err != nil {
		return nil, err
	}
	return scopedExemplarQuerier{ctx: ctx, inner: q}, nil
}

type scopedExemplarQuerier struct {
	ctx   context.Context
	inner storage.ExemplarQuerier
}

func (q scopedExemplarQuerier) Select(start, end int64, sets ...[]*labels.Matcher) ([]exemplar.QueryResult, error) {
	out := make([][]*labels.Matcher, len(sets))
	for i, ms := range sets {
		r, err := restrict(q.ctx, ms)
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return q.inner.Select(start, end, out...)
}

// stampedAppendable is where remote writes go: a project's writes get its
// project_id label (whatever they said), the platform's pass as sent.
type stampedAppendable struct{ inner storage.AppendableV2 }

func (a stampedAppendable) AppenderV2(ctx context.Context) storage.AppenderV2 {
	app := a.inner.AppenderV2(ctx)
	s, ok := ctx.Value(scopeKey{}).(Scope)
	switch {
	case ok && s.All:
		return app
	case ok && len(s.Projects) == 1:
		return &stampedAppender{AppenderV2: app, project: s.Projects[0]}
	}
	return refusingAppender{app}
}

type stampedAppender struct {
	storage.AppenderV2
	project string
	b       labels.Builder
}

func (a *stampedAppender) Append(_ storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AppendV2Options) (storage.SeriesRef, error) {
	a.b.Reset(ls)
	a.b.Set(ProjectLabel, a.project)
	// The caller's series reference named the unstamped series: drop it.
	return a.AppenderV2.Append(0, a.b.Labels(), st, t, v, h, fh, opts)
}

// AppendExemplars stamps exemplars' series the same way (remote write 1.0
// sends them beside the samples).
func (a *stampedAppender) AppendExemplars(_ storage.SeriesRef, ls labels.Labels, es []exemplar.Exemplar) (storage.SeriesRef, error) {
	inner, ok := a.AppenderV2.(storage.ExemplarAppenderV2)
	if !ok {
		return 0, fmt.Errorf("nightlight: the TSDB's appender %T takes no exemplars", a.AppenderV2)
	}
	a.b.Reset(ls)
	a.b.Set(ProjectLabel, a.project)
	return inner.AppendExemplars(0, a.b.Labels(), es)
}

// refusingAppender is a write without one project to stamp (several, or
// no scope at all): nothing is appended.
type refusingAppender struct{ storage.AppenderV2 }

func (a refusingAppender) Append(storage.SeriesRef, labels.Labels, int64, int64, float64, *histogram.Histogram, *histogram.FloatHistogram, storage.AppendV2Options) (storage.SeriesRef, error) {
	return 0, errNoScope
}

func (a refusingAppender) AppendExemplars(storage.SeriesRef, labels.Labels, []exemplar.Exemplar) (storage.SeriesRef, error) {
	return 0, errNoScope
}
