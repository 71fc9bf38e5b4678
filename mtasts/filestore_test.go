package mtasts

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestFileStore(t *testing.T) {
	dir := t.TempDir()
	s := &FileStore{Dir: dir}
	fetched := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	e := &Entry{Domain: "example.org", ID: "abc", Fetched: fetched,
		Policy: &Policy{Mode: ModeEnforce, MaxAge: time.Hour, MX: []string{"mx.example.org", "*.example.net"}}}
	if err := s.Save("example.org", e); err != nil {
		t.Fatal(err)
	}
	got, ok := s.Load("EXAMPLE.org.")
	if !ok || got.ID != "abc" || !got.Fetched.Equal(fetched) || got.Policy.Mode != ModeEnforce || got.Policy.MaxAge != time.Hour || !slices.Equal(got.Policy.MX, e.Policy.MX) {
		t.Fatalf("Load = %+v, %v", got, ok)
	}
	if _, ok := s.Load("other.org"); ok {
		t.Error("Load of a domain never saved found an entry")
	}
	if err := s.Save("../evil", e); err == nil {
		t.Error("Save accepted a path as a domain")
	}
	for name, content := range map[string]string{
		"garbage.org":  "{not json",
		"nomx.org":     `{"ID":"1","Fetched":"2026-01-01T00:00:00Z","Policy":{"Mode":"enforce","MaxAge":1}}`,
		"hugeage.org":  `{"ID":"1","Fetched":"2026-01-01T00:00:00Z","Policy":{"Mode":"none","MaxAge":99999999999999999}}`,
		"badmode.org":  `{"ID":"1","Fetched":"2026-01-01T00:00:00Z","Policy":{"Mode":"strict","MaxAge":1,"MX":["a.b"]}}`,
		"badmx.org":    `{"ID":"1","Fetched":"2026-01-01T00:00:00Z","Policy":{"Mode":"enforce","MaxAge":1,"MX":["a b"]}}`,
		"nopolicy.org": `{"ID":"1","Fetched":"2026-01-01T00:00:00Z"}`,
	} {
		os.WriteFile(filepath.Join(dir, name+".json"), []byte(content), 0o600)
		if got, ok := s.Load(name); ok {
			t.Errorf("Load(%s) accepted a corrupt file: %+v", name, got)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".mtasts-*")); len(m) != 0 {
		t.Errorf("temporary files left behind: %v", m)
	}
}
