package nightlight

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grafana/regexp"
	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/route"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/util/notifications"
	apiv1 "github.com/prometheus/prometheus/web/api/v1"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/photoncloud/photon/internal/auth"
	"github.com/photoncloud/photon/internal/registry"
	"github.com/photoncloud/photon/internal/rest"
	"github.com/photoncloud/photon/internal/state"
)

// PrometheusVersion is the Prometheus release whose libraries NightLight
// is built from (github.com/prometheus/prometheus v0.316.0); buildinfo
// reports it, so that clients such as Grafana pick the right features.
const PrometheusVersion = "3.16.0"

// Deps is what NightLight needs from the process it runs in.
type Deps struct {
	Client *clientv3.Client
	Auth   *auth.Authenticator
}

// Server runs NightLight as a lifecycle component.
type Server struct {
	cfg    Config
	deps   func() Deps
	authn  *auth.Authenticator
	logger *slog.Logger
	reg    *prometheus.Registry

	db      *tsdb.DB
	engine  *promql.Engine
	disc    *discovery.Manager
	scrapes *scrape.Manager
	rules   *rules.Manager
	http    *rest.Server
	entry   *registry.Registration

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started time.Time
	ready   atomic.Bool

	mu      sync.RWMutex
	current *config.Config
	applied time.Time

	stopOnce sync.Once
	stopErr  error
}

// New returns a server; deps is called at Start.
func New(cfg Config, deps func() Deps) (*Server, error) {
	cfg.Defaults()
	if cfg.DataDir == "" {
		return nil, errors.New("nightlight: no data dir")
	}
	return &Server{cfg: cfg, deps: deps}, nil
}

// Name names the component.
func (s *Server) Name() string { return "nightlight" }

// HTTPAddr is where the API listens.
func (s *Server) HTTPAddr() string { return s.http.Addr() }

// Start opens the TSDB and starts scraping, rule evaluation and the API.
func (s *Server) Start(ctx context.Context) (err error) {
	d := s.deps()
	s.authn = d.Auth
	s.logger = slog.Default().With("service", "nightlight")
	s.reg = prometheus.NewRegistry()
	s.reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	s.started = time.Now()
	defer func() {
		if err != nil {
			_ = s.Stop(context.Background())
		}
	}()

	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = s.cfg.RetentionTime.Milliseconds()
	opts.MaxBytes = s.cfg.RetentionSize
	if s.db, err = tsdb.Open(filepath.Join(s.cfg.DataDir, "tsdb"), s.logger.With("component", "tsdb"), s.reg, opts, nil); err != nil {
		return fmt.Errorf("nightlight: open tsdb: %w", err)
	}
	s.engine = NewEngine(s.cfg.Engine, s.logger.With("component", "query engine"), s.reg)

	bg, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	sdMetrics, err := discovery.CreateAndRegisterSDMetrics(s.reg)
	if err != nil {
		return err
	}
	// Prometheus batches target changes for 5 s in discovery and again in
	// the scrape manager; NightLight's targets are the registry's, so a
	// quarter of a scrape interval (at most those 5 s) keeps a new
	// service's first scrape within two intervals of its registration.
	settle := min(5*time.Second, s.cfg.ScrapeInterval/4)
	s.disc = discovery.NewManager(bg, s.logger.With("component", "discovery"), s.reg, sdMetrics, discovery.Name("scrape"), discovery.Updatert(settle))
	if s.scrapes, err = scrape.NewManager(&scrape.Options{DiscoveryReloadInterval: model.Duration(settle)}, s.logger.With("component", "scrape"), nil, nil, s.db, s.reg); err != nil {
		return err
	}
	s.rules = rules.NewManager(&rules.ManagerOptions{
		AppendableV2:    s.db,
		Queryable:       s.db,
		QueryFunc:       rules.EngineQueryFunc(s.engine, s.db),
		NotifyFunc:      func(context.Context, string, ...*rules.Alert) {}, // no Alertmanager: alerts are read at /api/v1/alerts
		Context:         bg,
		ExternalURL:     &url.URL{Scheme: "http", Host: s.cfg.HTTPAddr},
		Logger:          s.logger.With("component", "rules"),
		Registerer:      s.reg,
		OutageTolerance: time.Hour,
		ForGracePeriod:  10 * time.Minute,
		ResendDelay:     time.Minute,
		Parser:          NewParser(),
	})
	s.wg.Add(3)
	go func() { defer s.wg.Done(); _ = s.disc.Run() }()
	go func() { defer s.wg.Done(); _ = s.scrapes.Run(s.disc.SyncCh()) }()
	go func() { defer s.wg.Done(); s.rules.Run() }()

	// The first configuration is applied before the API answers, so a
	// broken config file fails the start instead of serving nothing.
	if err := s.reload(ctx, d.Client); err != nil {
		return err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		state.WatchKick(bg, d.Client, registry.Prefix, func() {
			if err := s.reload(bg, d.Client); err != nil && bg.Err() == nil {
				s.logger.Warn("nightlight: reload after a registry change", "err", err)
			}
		})
	}()

	s.http = rest.NewServer("nightlight", s.cfg.HTTPAddr, s.handler(d.Client))
	if err := s.http.Start(ctx); err != nil {
		return err
	}
	s.ready.Store(true)
	node, _ := os.Hostname()
	s.entry, err = registry.Register(ctx, d.Client, registry.Entry{Service: "nightlight", Node: node, HTTP: s.http.Addr(),
		Version: s.cfg.Version}, registry.DefaultTTL)
	return err
}

// reload rebuilds the configuration from the config file and the registry
// and applies it to discovery, scraping and rules, as Prometheus's reload.
func (s *Server) reload(ctx context.Context, cli *clientv3.Client) error {
	entries, err := registry.List(ctx, cli, "")
	if err != nil {
		return err
	}
	c, err := buildConfig(s.cfg, entries, s.logger)
	if err != nil {
		return err
	}
	scfgs, err := c.GetScrapeConfigs()
	if err != nil {
		return err
	}
	sd := make(map[string]discovery.Configs, len(scfgs))
	for _, sc := range scfgs {
		sd[sc.JobName] = sc.ServiceDiscoveryConfigs
	}
	if err := s.scrapes.ApplyConfig(c); err != nil {
		return err
	}
	if err := s.disc.ApplyConfig(sd); err != nil {
		return err
	}
	var files []string
	for _, pat := range c.RuleFiles {
		fs, err := filepath.Glob(pat)
		if err != nil {
			return fmt.Errorf("nightlight: rule files %s: %w", pat, err)
		}
		files = append(files, fs...)
	}
	if err := s.rules.Update(time.Duration(c.GlobalConfig.EvaluationInterval), files, c.GlobalConfig.ExternalLabels, "http://"+s.cfg.HTTPAddr, nil); err != nil {
		return fmt.Errorf("nightlight: rules: %w", err)
	}
	s.mu.Lock()
	s.current, s.applied = c, time.Now()
	s.mu.Unlock()
	return nil
}

// handler is the whole HTTP surface: Prometheus's API under /api/v1 (with
// the caller's tenant scope), /-/healthy and /-/ready as Prometheus answers
// them, and the seed's /health with /metrics.
func (s *Server) handler(cli *clientv3.Client) http.Handler {
	api := apiv1.NewAPI(
		s.engine, scopedStorage{s.db}, stampedAppendable{s.db}, scopedExemplars{s.db},
		func(context.Context) apiv1.ScrapePoolsRetriever { return s.scrapes },
		func(context.Context) apiv1.TargetRetriever { return s.scrapes },
		func(context.Context) apiv1.AlertmanagerRetriever { return noAlertmanagers{} },
		func() config.Config {
			s.mu.RLock()
			defer s.mu.RUnlock()
			return *s.current
		},
		map[string]string{
			"storage.tsdb.path":                filepath.Join(s.cfg.DataDir, "tsdb"),
			"storage.tsdb.retention.time":      s.cfg.RetentionTime.String(),
			"storage.tsdb.retention.size":      fmt.Sprint(s.cfg.RetentionSize),
			"query.timeout":                    s.cfg.Engine.Timeout.String(),
			"query.max-samples":                fmt.Sprint(s.cfg.Engine.MaxSamples),
			"query.lookback-delta":             s.cfg.Engine.LookbackDelta.String(),
			"web.enable-remote-write-receiver": "true",
		},
		apiv1.GlobalURLOptions{ListenAddress: s.cfg.HTTPAddr, Host: s.cfg.HTTPAddr, Scheme: "http"},
		s.whenReady,
		tsdbStats{s.db},
		filepath.Join(s.cfg.DataDir, "tsdb"),
		false, false, 0, // no admin API, no search API
		s.logger.With("component", "api"),
		func(context.Context) apiv1.RulesRetriever { return s.rules },
		50_000_000, 10, 1<<20, // remote read: Prometheus's default limits
		false, regexp.MustCompile(".*"),
		s.runtimeInfo,
		&apiv1.PrometheusVersion{Version: PrometheusVersion, Revision: s.cfg.Version, Branch: "nightlight", GoVersion: runtime.Version()},
		func() []notifications.Notification { return nil },
		func() (<-chan notifications.Notification, func(), bool) { return nil, func() {}, false },
		s.reg, s.reg,
		nil,
		true, remoteapi.MessageTypes{remoteapi.WriteV1MessageType, remoteapi.WriteV2MessageType},
		false, false, false, // no OTLP
		s.cfg.Engine.LookbackDelta,
		false, false,
		nil, nil,
		apiv1.OpenAPIOptions{Version: PrometheusVersion},
		NewParser(),
		false,
		s.cfg.Engine.Timeout,
	)
	av1 := route.New()
	api.Register(av1)

	rt := rest.NewRouter("nightlight", s.reg)
	rt.SetAuthn(s.authn)
	rt.MountHealth("", "nightlight", s.cfg.Version, map[string]rest.Check{
		"store": func(ctx context.Context) error { return state.Ping(ctx, cli) },
		"tsdb": func(context.Context) error {
			if !s.ready.Load() {
				return errors.New("not ready")
			}
			return nil
		},
	})
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", http.StripPrefix("/api/v1", s.tenancy(av1)))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(w, "Prometheus Server is Healthy.\n")
	})
	mux.HandleFunc("/-/ready", s.whenReady(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(w, "Prometheus Server is Ready.\n")
	}))
	mux.Handle("/", rt)
	return mux
}

// whenReady answers 503 until the server has started, as Prometheus does.
func (s *Server) whenReady(f http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, "Service Unavailable")
			return
		}
		f(w, r)
	}
}

func (s *Server) runtimeInfo() (apiv1.RuntimeInfo, error) {
	s.mu.RLock()
	applied := s.applied
	s.mu.RUnlock()
	cwd, _ := os.Getwd()
	host, _ := os.Hostname()
	return apiv1.RuntimeInfo{
		StartTime: s.started, CWD: cwd, Hostname: host, ServerTime: time.Now().UTC(),
		ReloadConfigSuccess: true, LastConfigTime: applied, GoroutineCount: runtime.NumGoroutine(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), GOGC: os.Getenv("GOGC"), GODEBUG: os.Getenv("GODEBUG"),
		StorageRetention: s.cfg.RetentionTime.String(),
	}, nil
}

// Stop stops serving, scraping and evaluating, then closes the TSDB (its
// head is kept by the WAL). A second call does nothing.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.ready.Store(false)
		if s.entry != nil {
			s.stopErr = s.entry.Close(ctx)
		}
		if s.http != nil {
			s.stopErr = errors.Join(s.stopErr, s.http.Stop(ctx))
		}
		// The registry watch and discovery end first, so no reload
		// reaches the managers while they stop.
		if s.cancel != nil {
			s.cancel()
		}
		if s.rules != nil {
			s.rules.Stop()
		}
		if s.scrapes != nil {
			s.scrapes.Stop()
		}
		s.wg.Wait()
		if s.db != nil {
			s.stopErr = errors.Join(s.stopErr, s.db.Close())
		}
	})
	return s.stopErr
}

// noAlertmanagers: NightLight sends alerts nowhere; /api/v1/alerts lists them.
type noAlertmanagers struct{}

func (noAlertmanagers) Alertmanagers() []*url.URL        { return nil }
func (noAlertmanagers) DroppedAlertmanagers() []*url.URL { return nil }

// tsdbStats is the TSDB as /api/v1/status/tsdb reads it (Prometheus's
// readyStorage does the same).
type tsdbStats struct{ db *tsdb.DB }

func (t tsdbStats) CleanTombstones() error { return t.db.CleanTombstones() }
func (t tsdbStats) Delete(ctx context.Context, mint, maxt int64, ms ...*labels.Matcher) error {
	return t.db.Delete(ctx, mint, maxt, ms...)
}
func (t tsdbStats) Snapshot(dir string, withHead bool) error { return t.db.Snapshot(dir, withHead) }
func (t tsdbStats) Stats(name string, limit int) (*tsdb.Stats, error) {
	return t.db.Head().Stats(name, limit), nil
}
func (t tsdbStats) WALReplayStatus() (tsdb.WALReplayStatus, error) {
	return tsdb.WALReplayStatus{}, nil
}
func (t tsdbStats) BlockMetas() ([]tsdb.BlockMeta, error) { return t.db.BlockMetas(), nil }
