package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// The generated stream is what a fleet of node-exporter-like targets with a
// few service metrics would remote-write: every target exposes the same
// families (counters, gauges, classic histograms) with small label
// dimensions; the targets are spread over a few jobs and regions. Values and
// timestamps are pure functions of (series, scrape), so both receivers get
// the same bytes and every run the same stream relative to its start time.

type kind int

const (
	counter kind = iota
	gauge
	histogram
)

type dim struct {
	name   string
	values []string
}

// family is one metric family a target exposes; scale sets its magnitude.
type family struct {
	name  string
	kind  kind
	scale float64
	dims  []dim
}

var (
	methods  = dim{"method", []string{"GET", "POST", "PUT", "DELETE"}}
	codes    = dim{"code", []string{"200", "404", "500"}}
	cpus     = dim{"cpu", []string{"0", "1"}}
	modes    = dim{"mode", []string{"idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice"}}
	netDevs  = dim{"device", []string{"eth0", "eth1", "lo"}}
	diskDevs = dim{"device", []string{"vda", "vdb"}}
	mounts   = dim{"mountpoint", []string{"/", "/var", "/data"}}
	services = dim{"service", []string{"auth", "billing", "search"}}
	grpcCode = dim{"grpc_code", []string{"OK", "NotFound", "Unavailable"}}
	dbOps    = dim{"op", []string{"select", "insert", "update"}}
	caches   = dim{"cache", []string{"sessions", "users", "pages", "tokens", "blobs"}}

	jobs    = []string{"api", "db", "cache", "worker", "node"}
	regions = []string{"eu-west", "us-east", "ap-south"}

	// les are the classic histograms' bucket bounds; cdf the share of
	// observations at or below each.
	les = []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"}
	cdf = []float64{0.02, 0.05, 0.12, 0.25, 0.45, 0.7, 0.85, 0.93, 0.97, 0.99, 0.995, 1}
)

// families: 3 classic histograms and 44 counters and gauges, 53 metric
// names and 269 series per target (the report prints both).
var families = []family{
	{"http_request_duration_seconds", histogram, 20, []dim{methods}},
	{"rpc_duration_seconds", histogram, 10, []dim{services}},
	{"db_query_duration_seconds", histogram, 10, []dim{dbOps}},
	{"http_requests_total", counter, 20, []dim{methods, codes}},
	{"node_cpu_seconds_total", counter, 0.15, []dim{cpus, modes}},
	{"node_network_receive_bytes_total", counter, 1e5, []dim{netDevs}},
	{"node_network_transmit_bytes_total", counter, 1e5, []dim{netDevs}},
	{"node_network_receive_packets_total", counter, 100, []dim{netDevs}},
	{"node_network_transmit_packets_total", counter, 100, []dim{netDevs}},
	{"node_network_receive_errs_total", counter, 0.1, []dim{netDevs}},
	{"node_disk_read_bytes_total", counter, 1e5, []dim{diskDevs}},
	{"node_disk_written_bytes_total", counter, 1e5, []dim{diskDevs}},
	{"node_disk_reads_completed_total", counter, 10, []dim{diskDevs}},
	{"node_disk_writes_completed_total", counter, 10, []dim{diskDevs}},
	{"node_disk_io_time_seconds_total", counter, 0.1, []dim{diskDevs}},
	{"node_context_switches_total", counter, 1000, nil},
	{"node_intr_total", counter, 1000, nil},
	{"process_cpu_seconds_total", counter, 0.05, nil},
	{"rpc_requests_total", counter, 10, []dim{services, grpcCode}},
	{"db_queries_total", counter, 10, []dim{dbOps}},
	{"cache_hits_total", counter, 50, []dim{caches}},
	{"cache_misses_total", counter, 5, []dim{caches}},
	{"log_messages_total", counter, 5, []dim{{"level", []string{"debug", "info", "warn", "error"}}}},
	{"gc_runs_total", counter, 0.2, nil},
	{"bytes_sent_total", counter, 1e4, nil},
	{"up", gauge, 0, nil},
	{"node_load1", gauge, 1, nil},
	{"node_load5", gauge, 1, nil},
	{"node_load15", gauge, 1, nil},
	{"node_memory_Active_bytes", gauge, 4e9, nil},
	{"node_memory_MemAvailable_bytes", gauge, 8e9, nil},
	{"node_memory_MemFree_bytes", gauge, 2e9, nil},
	{"node_memory_Cached_bytes", gauge, 3e9, nil},
	{"node_memory_Buffers_bytes", gauge, 2e8, nil},
	{"node_filesystem_avail_bytes", gauge, 5e10, []dim{mounts}},
	{"node_filesystem_size_bytes", gauge, 1e11, []dim{mounts}},
	{"node_filesystem_files_free", gauge, 1e6, []dim{mounts}},
	{"node_hwmon_temp_celsius", gauge, 50, []dim{{"sensor", []string{"temp1", "temp2", "temp3", "temp4"}}}},
	{"process_resident_memory_bytes", gauge, 3e8, nil},
	{"process_open_fds", gauge, 100, nil},
	{"go_goroutines", gauge, 200, nil},
	{"go_threads", gauge, 20, nil},
	{"go_memstats_heap_inuse_bytes", gauge, 1e8, nil},
	{"queue_length", gauge, 30, []dim{{"queue", []string{"q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7"}}}},
	{"db_connections_active", gauge, 20, []dim{{"pool", []string{"primary", "replica1", "replica2", "analytics"}}}},
	{"cache_entries", gauge, 1e5, []dim{caches}},
	{"worker_busy_ratio", gauge, 0.5, nil},
}

// seriesDef is one series' labels and how its values are made.
type seriesDef struct {
	labels []prompb.Label // sorted by name
	kind   kind
	scale  float64
	seed   uint64 // the series' own
	group  uint64 // a histogram's: shared by its buckets, _sum and _count
	bucket int    // histogram: index into les; -1 _sum, -2 _count
	offset int64  // its target's scrape offset in the 15 s interval, ms
}

// generator makes the stream's remote-write requests, scrape by scrape.
type generator struct {
	defs     []seriesDef
	ts       []prompb.TimeSeries
	batch    int
	start    int64 // ms: scrape 0 of the target with offset 0
	interval int64 // ms
	targets  int
	names    int
	perTgt   int
}

// newGenerator lays out n series (whole targets, the last one partial) in
// batches of batch series, scrape 0 at start.
func newGenerator(n, batch int, start time.Time, interval time.Duration) *generator {
	g := &generator{batch: batch, start: start.UnixMilli(), interval: interval.Milliseconds()}
	type tmpl struct {
		labels []prompb.Label
		kind   kind
		scale  float64
		bucket int
		group  int
	}
	var per []tmpl
	names := map[string]bool{}
	group := 0
	for _, f := range families {
		for _, combo := range combos(f.dims) {
			if f.kind != histogram {
				per = append(per, tmpl{labels: append([]prompb.Label{{Name: "__name__", Value: f.name}}, combo...), kind: f.kind, scale: f.scale})
				names[f.name] = true
				continue
			}
			group++
			for j, le := range les {
				l := append([]prompb.Label{{Name: "__name__", Value: f.name + "_bucket"}, {Name: "le", Value: le}}, combo...)
				per = append(per, tmpl{labels: l, kind: histogram, scale: f.scale, bucket: j, group: group})
			}
			per = append(per, tmpl{labels: append([]prompb.Label{{Name: "__name__", Value: f.name + "_sum"}}, combo...), kind: histogram, scale: f.scale, bucket: -1, group: group})
			per = append(per, tmpl{labels: append([]prompb.Label{{Name: "__name__", Value: f.name + "_count"}}, combo...), kind: histogram, scale: f.scale, bucket: -2, group: group})
			names[f.name+"_bucket"], names[f.name+"_sum"], names[f.name+"_count"] = true, true, true
		}
	}
	g.names, g.perTgt = len(names), len(per)
	g.defs = make([]seriesDef, 0, n)
	for t := 0; len(g.defs) < n; t++ {
		g.targets = t + 1
		tl := []prompb.Label{
			{Name: "job", Value: jobs[t%len(jobs)]},
			{Name: "instance", Value: fmt.Sprintf("10.%d.%d.%d:9100", t/65536%256, t/256%256, t%256)},
			{Name: "region", Value: regions[t/len(jobs)%len(regions)]},
		}
		offset := int64(mix(uint64(t), 0xfeed) % uint64(g.interval))
		for i, p := range per {
			if len(g.defs) == n {
				break
			}
			l := slices.Concat(p.labels, tl)
			slices.SortFunc(l, func(a, b prompb.Label) int { return strings.Compare(a.Name, b.Name) })
			id := uint64(t*len(per) + i)
			g.defs = append(g.defs, seriesDef{labels: l, kind: p.kind, scale: p.scale, seed: mix(id, 1),
				group: mix(uint64(t*1000+p.group), 2), bucket: p.bucket, offset: offset})
		}
	}
	g.ts = make([]prompb.TimeSeries, n)
	for i, d := range g.defs {
		g.ts[i] = prompb.TimeSeries{Labels: d.labels, Samples: make([]prompb.Sample, 1)}
	}
	return g
}

// combos is every assignment of values to dims, as label lists.
func combos(dims []dim) [][]prompb.Label {
	out := [][]prompb.Label{nil}
	for _, d := range dims {
		var next [][]prompb.Label
		for _, c := range out {
			for _, v := range d.values {
				next = append(next, append(slices.Clone(c), prompb.Label{Name: d.name, Value: v}))
			}
		}
		out = next
	}
	return out
}

// mix is splitmix64 of a and b: the stream's only source of variation.
func mix(a, b uint64) uint64 {
	z := a*0x9e3779b97f4a7c15 + b*0xbf58476d1ce4e5b9 + 0x94d049bb133111eb
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// monotone is a counter's value at scrape k: it rises by m ± m/2 per scrape
// (never by less than 1 unit), from a start that differs per series.
func monotone(seed uint64, k int, m uint64) float64 {
	return float64(seed%10000*m + uint64(k)*m + mix(seed, uint64(k))%m)
}

// value is series d's value at scrape k.
func (d *seriesDef) value(k int) float64 {
	switch d.kind {
	case counter:
		// Counters count in units of scale/10 (or whole units), as real ones do.
		unit := max(d.scale/10, 1)
		m := uint64(max(1, d.scale/unit*10)) + d.seed%5
		return monotone(d.seed, k, m) * unit / 10
	case gauge:
		if d.scale == 0 { // up
			return 1
		}
		base := d.scale * (0.5 + float64(d.seed%1000)/1000)
		v := base * (1 + 0.2*math.Sin(float64(k)/5+float64(d.seed%628)/100))
		if d.scale >= 10 {
			return math.Round(v)
		}
		return math.Round(v*1000) / 1000
	}
	count := monotone(d.group, k, uint64(d.scale)+d.group%10)
	switch d.bucket {
	case -2:
		return count
	case -1:
		return math.Round(count*(0.05+float64(d.group%100)/1000)*1e6) / 1e6
	}
	return math.Floor(count * cdf[d.bucket])
}

// scrape is scrape k of every series as snappy-compressed remote-write 1.0
// requests of up to batch series each, and the number of samples.
func (g *generator) scrape(k int) ([][]byte, int, error) {
	base := g.start + int64(k)*g.interval
	for i := range g.ts {
		d := &g.defs[i]
		g.ts[i].Samples[0] = prompb.Sample{Value: d.value(k), Timestamp: base + d.offset}
	}
	var out [][]byte
	for lo := 0; lo < len(g.ts); lo += g.batch {
		req := prompb.WriteRequest{Timeseries: g.ts[lo:min(lo+g.batch, len(g.ts))]}
		b, err := req.Marshal()
		if err != nil {
			return nil, 0, err
		}
		out = append(out, snappy.Encode(nil, b))
	}
	return out, len(g.ts), nil
}

// end is the timestamp (ms) of the last sample of scrapes 0..k.
func (g *generator) end(k int) int64 { return g.start + int64(k)*g.interval + g.interval - 1 }
