package chainfire

import (
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// etcdLogger builds etcd's zap logger at level. Once stopping is set, it
// drops the error etcd logs for each of its listeners as they close on a
// clean shutdown ("setting up serving from embedded etcd failed … server
// closed"), which would otherwise end every clean stop with a screen of
// false alarms.
func etcdLogger(level string, stopping *atomic.Bool) (*zap.Logger, error) {
	cfg := zap.NewProductionConfig()
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.OutputPaths = []string{"stderr"}
	cfg.ErrorOutputPaths = []string{"stderr"}
	cfg.Sampling = nil
	lg, err := cfg.Build()
	if err != nil {
		return nil, err
	}
	return lg.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return &shutdownFilter{Core: c, stopping: stopping}
	})), nil
}

type shutdownFilter struct {
	zapcore.Core
	stopping *atomic.Bool
}

const listenerClosedMsg = "setting up serving from embedded etcd failed."

func (f *shutdownFilter) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if f.stopping.Load() && e.Message == listenerClosedMsg {
		return ce
	}
	if f.Enabled(e.Level) {
		return ce.AddCore(e, f)
	}
	return ce
}

func (f *shutdownFilter) With(fields []zapcore.Field) zapcore.Core {
	return &shutdownFilter{Core: f.Core.With(fields), stopping: f.stopping}
}
