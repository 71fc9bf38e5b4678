package mtasts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// maxStoredEntry bounds a cache file read back (a policy is at most 64 KiB).
const maxStoredEntry = 1 << 20

// FileStore is a Store in a directory: one JSON file per domain, written
// to a temporary file and renamed into place, so that a reader never sees
// half a policy and the cache survives restarts. The directory must exist.
type FileStore struct {
	Dir string
}

// path returns the file of domain; a name that is not a plain domain name
// (a path separator, "..") has none.
func (s *FileStore) path(domain string) (string, error) {
	d, err := normalize(domain)
	if err != nil || strings.ContainsAny(d, `/\`) || strings.Contains(d, "..") {
		return "", fmt.Errorf("mtasts: %q cannot name a cache file", clip(domain))
	}
	return filepath.Join(s.Dir, d+".json"), nil
}

// Load implements Store. A missing, unreadable or invalid file is no
// entry.
func (s *FileStore) Load(domain string) (*Entry, bool) {
	p, err := s.path(domain)
	if err != nil {
		return nil, false
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStoredEntry+1))
	if err != nil || len(b) > maxStoredEntry {
		return nil, false
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil || !validEntry(&e) {
		return nil, false
	}
	return &e, true
}

// validEntry: what a file holds is checked like a fetched policy, since
// the file may have been edited or corrupted.
func validEntry(e *Entry) bool {
	p := e.Policy
	if p == nil || e.ID == "" || p.MaxAge < 0 || p.MaxAge > MaxMaxAge || e.Fetched.IsZero() {
		return false
	}
	switch p.Mode {
	case ModeEnforce, ModeTesting:
		if len(p.MX) == 0 {
			return false
		}
	case ModeNone:
	default:
		return false
	}
	for _, m := range p.MX {
		if !validPattern(m) {
			return false
		}
	}
	return true
}

// Save implements Store.
func (s *FileStore) Save(domain string, e *Entry) error {
	p, err := s.path(domain)
	if err != nil {
		return err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("mtasts: %w", err)
	}
	tmp, err := os.CreateTemp(s.Dir, ".mtasts-*.tmp")
	if err != nil {
		return fmt.Errorf("mtasts: %w", err)
	}
	_, werr := tmp.Write(b)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("mtasts: writing the cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("mtasts: %w", err)
	}
	return nil
}
