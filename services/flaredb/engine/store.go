package engine

import (
	"archive/tar"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
)

// PlatformDB names the platform's own database: the one requests use that
// name no project, and where the engine keeps its cluster bookkeeping.
const PlatformDB = ""

// platformFile is PlatformDB's file name; a project id never starts with
// '_', so no project's file can take it.
const platformFile = "_platform"

// errSwap marks a restore that failed after the live databases were
// closed: the replica cannot go on.
var errSwap = errors.New("swapping databases")

// ErrBadDatabase is returned for a database name that cannot be a file.
var ErrBadDatabase = errors.New("invalid database name")

// CheckDatabase validates a database name: PlatformDB, or 1–63 lower-case
// letters, digits, '-', '_', '.' or ':' starting with a letter or digit
// (the platform's id rule, so every project id is one).
func CheckDatabase(name string) error {
	if name == PlatformDB {
		return nil
	}
	if len(name) > 63 {
		return fmt.Errorf("%w: %q is longer than 63 characters", ErrBadDatabase, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '-' || c == '_' || c == '.' || c == ':')) {
			return fmt.Errorf("%w: %q", ErrBadDatabase, name)
		}
	}
	return nil
}

func fileOf(name string) string {
	if name == PlatformDB {
		return platformFile + ".sqlite"
	}
	return name + ".sqlite"
}

func nameOf(file string) (string, bool) {
	base, ok := strings.CutSuffix(file, ".sqlite")
	if !ok {
		return "", false
	}
	if base == platformFile {
		return PlatformDB, true
	}
	return base, CheckDatabase(base) == nil && base != ""
}

// store is the set of databases, one SQLite file each, in a generation
// directory named by the CURRENT file. A snapshot restore writes the next
// generation whole and then switches CURRENT, so a crash leaves one
// complete set or the other, never a mix.
//
//	CURRENT        "gen-N"
//	gen-N/         _platform.sqlite and <project>.sqlite, with WAL files
type store struct {
	root   string
	tmpDir string
	gen    int

	// mu guards dbs; it is write-locked while a restore swaps the set, so
	// readers never see a closed pool.
	mu  sync.RWMutex
	dbs map[string]*database
	// missing answers reads of a database no write has created yet: an
	// empty in-memory one with the engine's schema.
	missing, missingTx *sql.DB
	seq                atomic.Uint64
}

func openStore(root string, fresh bool) (*store, error) {
	s := &store{root: root, tmpDir: filepath.Join(root, "tmp"), dbs: map[string]*database{}}
	if err := os.RemoveAll(s.tmpDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.tmpDir, 0o700); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(root, "CURRENT"))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		g, perr := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(string(b)), "gen-"))
		if perr != nil {
			return nil, fmt.Errorf("CURRENT: %q", b)
		}
		s.gen = g
	}
	if fresh && s.gen > 0 {
		// Databases without a log to match them would make the node skip
		// entries it never applied.
		s.gen++
	}
	if s.gen == 0 {
		s.gen = 1
	}
	if err := os.MkdirAll(s.genDir(s.gen), 0o700); err != nil {
		return nil, err
	}
	if err := s.setCurrent(s.gen); err != nil {
		return nil, err
	}
	if err := s.removeOtherGens(); err != nil {
		return nil, err
	}
	if s.missing, err = openMissing(); err != nil {
		return nil, err
	}
	if s.missingTx, err = openMissingTx(); err != nil {
		return nil, err
	}
	if err := s.openAll(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *store) genDir(g int) string { return filepath.Join(s.root, "gen-"+strconv.Itoa(g)) }

// setCurrent points CURRENT at generation g, durably.
func (s *store) setCurrent(g int) error {
	tmp := filepath.Join(s.tmpDir, "CURRENT")
	if err := os.WriteFile(tmp, []byte("gen-"+strconv.Itoa(g)+"\n"), 0o600); err != nil {
		return err
	}
	f, err := os.Open(tmp)
	if err != nil {
		return err
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(s.root, "CURRENT")); err != nil {
		return err
	}
	return syncDir(s.root)
}

func (s *store) removeOtherGens() error {
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "gen-") && e.Name() != "gen-"+strconv.Itoa(s.gen) {
			if err := os.RemoveAll(filepath.Join(s.root, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// openAll opens every database of the current generation (and creates the
// platform's), so that each one's applied index is known before replay.
func (s *store) openAll() error {
	entries, err := os.ReadDir(s.genDir(s.gen))
	if err != nil {
		return err
	}
	names := []string{PlatformDB}
	for _, e := range entries {
		if name, ok := nameOf(e.Name()); ok && name != PlatformDB && e.Type().IsRegular() {
			names = append(names, name)
		}
	}
	for _, name := range names {
		d, err := openDatabase(name, filepath.Join(s.genDir(s.gen), fileOf(name)))
		if err != nil {
			return err
		}
		s.dbs[name] = d
	}
	return nil
}

func openMissing() (*sql.DB, error) {
	c, err := sqlite.NewConnector("file::memory:")
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(readConnector{Connector: c, init: schema})
	db.SetMaxOpenConns(4)
	return db, nil
}

// openMissingTx is openMissing for the engine's reads, which open
// transactions (several statements read one state).
func openMissingTx() (*sql.DB, error) {
	c, err := sqlite.NewConnector("file::memory:")
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(readConnector{Connector: c, init: schema, allowTx: true})
	db.SetMaxOpenConns(2)
	return db, nil
}

// platform returns the platform database, which always exists.
func (s *store) platform() *database {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.dbs[PlatformDB]
}

// forWrite returns name's database, creating its file on first use
// (created reports that). Only the FSM goroutine calls it.
func (s *store) forWrite(name string) (d *database, created bool, err error) {
	s.mu.RLock()
	d = s.dbs[name]
	s.mu.RUnlock()
	if d != nil {
		return d, false, nil
	}
	d, err = openDatabase(name, filepath.Join(s.genDir(s.gen), fileOf(name)))
	if err != nil {
		return nil, false, err
	}
	if err := syncDir(s.genDir(s.gen)); err != nil {
		d.close()
		return nil, false, err
	}
	s.mu.Lock()
	s.dbs[name] = d
	s.mu.Unlock()
	return d, true, nil
}

// drop removes a database that an entry created but left empty (its
// commands failed or changed nothing), as every replica does for the same
// entry: a write that changed nothing must not leave a database behind.
func (s *store) drop(d *database) error {
	s.mu.Lock()
	delete(s.dbs, d.name)
	s.mu.Unlock()
	return errors.Join(d.close(), removeDB(d.path), syncDir(filepath.Dir(d.path)))
}

// read runs f on name's read pool (the empty one if name has no file yet,
// d nil then) under the read lock; engine chooses the pool that allows
// transactions.
func (s *store) read(name string, engine bool, f func(db *sql.DB, d *database) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.dbs == nil {
		return ErrClosed
	}
	d := s.dbs[name]
	switch {
	case d == nil && engine:
		return f(s.missingTx, nil)
	case d == nil:
		return f(s.missing, nil)
	case engine:
		return f(d.idb, d)
	}
	return f(d.rdb, d)
}

// names lists the databases that exist, sorted.
func (s *store) names() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.dbs))
	for name := range s.dbs {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func (s *store) closeDBs() error {
	var errs []error
	for _, d := range s.dbs {
		errs = append(errs, d.close())
	}
	s.dbs = nil
	return errors.Join(errs...)
}

// close is called after raft stopped, so nothing applies concurrently.
func (s *store) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.closeDBs()
	if s.missing != nil {
		err = errors.Join(err, s.missing.Close(), s.missingTx.Close())
		s.missing, s.missingTx = nil, nil
	}
	return err
}

// Snapshot format: a tar stream of one VACUUM INTO copy per database,
// named by file, after a version entry.
const snapshotVersion = "flaredb-snapshot-1"

// snapshot copies every database into a temp dir (on the FSM goroutine,
// so no apply is half done) for Persist to stream later.
func (s *store) snapshot() (string, error) {
	dir := filepath.Join(s.tmpDir, fmt.Sprintf("snap-%d-%d", time.Now().UnixNano(), s.seq.Add(1)))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for name, d := range s.dbs {
		if err := d.vacuumInto(filepath.Join(dir, fileOf(name))); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("copy %s: %w", fileOf(name), err)
		}
	}
	return dir, nil
}

// writeSnapshot streams the copies in dir as the snapshot format.
func writeSnapshot(w io.Writer, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Name: snapshotVersion, Mode: 0o600, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	for _, e := range entries {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		fi, err := f.Stat()
		if err == nil {
			err = tw.WriteHeader(&tar.Header{Name: e.Name(), Mode: 0o600, Size: fi.Size(), Typeflag: tar.TypeReg})
		}
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		f.Close()
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// restore replaces every database with the snapshot read from r: it is
// written as the next generation, made durable, and only then made current.
func (s *store) restore(r io.Reader) error {
	next := s.gen + 1
	dir := s.genDir(next)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	if err := unpackSnapshot(r, dir); err != nil {
		os.RemoveAll(dir)
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.closeDBs()
	s.dbs = map[string]*database{}
	if err == nil {
		err = s.setCurrent(next)
	}
	if err == nil {
		s.gen = next
		err = s.removeOtherGens()
	}
	if err == nil {
		err = s.openAll()
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errSwap, err)
	}
	return nil
}

func unpackSnapshot(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	h, err := tr.Next()
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if h.Name != snapshotVersion {
		return fmt.Errorf("snapshot: unknown format %q", h.Name)
	}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		if _, ok := nameOf(h.Name); !ok || h.Typeflag != tar.TypeReg {
			return fmt.Errorf("snapshot: unexpected entry %q", h.Name)
		}
		if err := writeFileSync(filepath.Join(dir, h.Name), tr); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

func writeFileSync(path string, r io.Reader) error {
	out, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
