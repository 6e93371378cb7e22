package nightlight

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"go.yaml.in/yaml/v2"

	"github.com/photoncloud/photon/internal/registry"
)

// buildConfig is the Prometheus configuration NightLight runs: the
// operator's file (if any) plus one scrape job per PhotonCloud service in
// the registry, each instance labelled with its node. It is rendered as
// YAML and parsed by Prometheus's own loader, so every default and check
// is Prometheus's. A job the file already names is left to the file.
func buildConfig(cfg Config, entries []registry.Entry, logger *slog.Logger) (*config.Config, error) {
	doc := yaml.MapSlice{}
	if cfg.ConfigFile != "" {
		raw, err := os.ReadFile(cfg.ConfigFile)
		if err != nil {
			return nil, fmt.Errorf("nightlight: config file: %w", err)
		}
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			return nil, fmt.Errorf("nightlight: config file %s: %w", cfg.ConfigFile, err)
		}
	}
	global := yaml.MapSlice{
		{Key: "scrape_interval", Value: model.Duration(cfg.ScrapeInterval).String()},
		{Key: "scrape_timeout", Value: model.Duration(cfg.ScrapeTimeout).String()},
		{Key: "evaluation_interval", Value: model.Duration(cfg.EvalInterval).String()},
	}
	var jobs []any
	taken := map[string]bool{}
	for i := range doc {
		switch doc[i].Key {
		case "global":
			// The file's global settings win over the flags'.
			if g, ok := doc[i].Value.(yaml.MapSlice); ok {
				global = mergeMap(global, g)
			}
		case "scrape_configs":
			list, _ := doc[i].Value.([]any)
			for _, j := range list {
				if m, ok := j.(yaml.MapSlice); ok {
					for _, kv := range m {
						if kv.Key == "job_name" {
							taken[fmt.Sprint(kv.Value)] = true
						}
					}
				}
			}
			jobs = append(jobs, list...)
		}
	}
	jobs = append(jobs, registryJobs(entries, cfg.TokenFile, taken)...)
	out := yaml.MapSlice{{Key: "global", Value: global}, {Key: "scrape_configs", Value: jobs}}
	for _, kv := range doc {
		if kv.Key != "global" && kv.Key != "scrape_configs" {
			out = append(out, kv)
		}
	}
	text, err := yaml.Marshal(out)
	if err != nil {
		return nil, err
	}
	c, err := config.Load(string(text), logger)
	if err != nil {
		return nil, fmt.Errorf("nightlight: config: %w", err)
	}
	if cfg.ConfigFile != "" {
		// Relative paths (rule files, credentials) are the file's.
		c.SetDirectory(filepath.Dir(cfg.ConfigFile))
	}
	return c, nil
}

// registryJobs is one scrape job per service: its instances' HTTP
// addresses, labelled instance=<node>, on their metrics path.
func registryJobs(entries []registry.Entry, tokenFile string, taken map[string]bool) []any {
	byService := map[string][]registry.Entry{}
	for _, e := range entries {
		if e.HTTP != "" && !taken[e.Service] {
			byService[e.Service] = append(byService[e.Service], e)
		}
	}
	names := make([]string, 0, len(byService))
	for n := range byService {
		names = append(names, n)
	}
	sort.Strings(names)
	var jobs []any
	for _, svc := range names {
		es := byService[svc]
		sort.Slice(es, func(i, j int) bool { return es[i].Node < es[j].Node })
		path := es[0].MetricsPath
		if path == "" {
			path = "/metrics"
		}
		var groups []any
		for _, e := range es {
			groups = append(groups, yaml.MapSlice{
				{Key: "targets", Value: []string{e.HTTP}},
				{Key: "labels", Value: map[string]string{"instance": e.Node}},
			})
		}
		job := yaml.MapSlice{
			{Key: "job_name", Value: svc},
			{Key: "metrics_path", Value: path},
			{Key: "static_configs", Value: groups},
		}
		if tokenFile != "" {
			job = append(job, yaml.MapSlice{{Key: "authorization", Value: yaml.MapSlice{
				{Key: "type", Value: "Bearer"}, {Key: "credentials_file", Value: tokenFile}}}}...)
		}
		jobs = append(jobs, job)
	}
	return jobs
}

// mergeMap is base with over's keys replacing or adding to it.
func mergeMap(base, over yaml.MapSlice) yaml.MapSlice {
	out := append(yaml.MapSlice(nil), base...)
	for _, kv := range over {
		replaced := false
		for i := range out {
			if out[i].Key == kv.Key {
				out[i].Value, replaced = kv.Value, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}
