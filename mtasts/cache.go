package mtasts

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Entry is a policy as cached: the policy, its id from the TXT record and
// when it was fetched.
type Entry struct {
	Domain  string
	ID      string
	Policy  *Policy
	Fetched time.Time

	// Cached reports that Get answered from the cache; RefreshErr, when
	// set, says why the cache was used instead of a fresh policy (the TXT
	// record or the policy host failed). Neither is stored.
	Cached     bool  `json:"-"`
	RefreshErr error `json:"-"`
}

// Expires returns when the entry stops being usable (Fetched + max_age).
func (e *Entry) Expires() time.Time { return e.Fetched.Add(e.Policy.MaxAge) }

// Store keeps cached policies by domain. Implementations must be safe for
// concurrent use.
type Store interface {
	// Load returns the entry stored for domain, if any.
	Load(domain string) (*Entry, bool)
	// Save stores e for domain, replacing what was there.
	Save(domain string, e *Entry) error
}

// MemoryStore is a Store in memory. The zero value is ready to use.
type MemoryStore struct {
	mu sync.Mutex
	m  map[string]Entry
}

// Load implements Store.
func (s *MemoryStore) Load(domain string) (*Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[domain]
	if !ok {
		return nil, false
	}
	return &e, true
}

// Save implements Store.
func (s *MemoryStore) Save(domain string, e *Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]Entry{}
	}
	c := *e
	c.Cached, c.RefreshErr = false, nil
	s.m[domain] = c
	return nil
}

// Cache answers which policy is in force for a domain, with the rules of
// RFC 8461 §5.1: a policy is fetched the first time (trust on first use)
// and again when the TXT record's id changes; a cached policy that has not
// outlived its max_age keeps applying when the TXT record disappears or
// the policy host fails, so that an attacker who blocks DNS or HTTPS cannot
// remove it. The zero value uses a zero Fetcher and a MemoryStore.
type Cache struct {
	Fetcher *Fetcher
	// Store keeps the policies; nil means a MemoryStore of this Cache.
	Store Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mem MemoryStore
}

// Get returns the policy in force for domain. With a usable cached policy
// it never fails: the entry then has Cached set and, when the refresh
// failed, RefreshErr. Without one, the error is the discovery's
// (errors.Is(err, ErrNoRecord) means the domain has no policy). A policy
// in mode none is returned like the others: it means no policy applies.
// A fresh policy is returned even when storing it fails.
func (c *Cache) Get(ctx context.Context, domain string) (*Entry, error) {
	domain, err := normalize(domain)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	store := c.store()
	f := c.Fetcher
	if f == nil {
		f = &Fetcher{}
	}
	cached, ok := store.Load(domain)
	if ok && !now.Before(cached.Expires()) {
		ok = false
	}
	useCache := func(err error) (*Entry, error) {
		if !ok {
			return nil, err
		}
		cached.Cached, cached.RefreshErr = true, err
		return cached, nil
	}
	_, rec, err := f.LookupRecord(ctx, domain)
	if err != nil {
		return useCache(err)
	}
	if ok && cached.ID == rec.ID {
		return useCache(nil)
	}
	_, p, err := f.FetchPolicy(ctx, domain)
	if err != nil {
		return useCache(err)
	}
	e := &Entry{Domain: domain, ID: rec.ID, Policy: p, Fetched: now}
	if err := store.Save(domain, e); err != nil {
		e.RefreshErr = errors.Join(errors.New("mtasts: the policy could not be cached"), err)
	}
	return e, nil
}

func (c *Cache) store() Store {
	if c.Store != nil {
		return c.Store
	}
	return &c.mem
}
