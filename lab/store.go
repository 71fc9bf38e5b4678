package lab

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrBadCredentials is the answer to a wrong user or password.
var ErrBadCredentials = errors.New("lab: invalid credentials")

// store is the lab's shared mail store: one user, one INBOX. Mail sent to
// any lab SMTP, submission or LMTP endpoint lands in it, so that a message
// sent over SMTP can be read back over IMAP or POP3.
type store struct {
	user, password string
	maxMessages    int
	maxBytes       int

	mu    sync.Mutex
	inbox [][]byte
	size  int
}

func newStore(user, password string) *store {
	welcome := fmt.Sprintf("From: lab@starttls.test\r\nTo: %s@starttls.test\r\nSubject: Welcome to the starttls lab\r\nDate: %s\r\nMessage-ID: <welcome@starttls.test>\r\n\r\nThis message was read over a connection the lab secured.\r\n",
		user, time.Now().UTC().Format(time.RFC1123Z))
	return &store{user: user, password: password, maxMessages: 1000, maxBytes: 64 << 20,
		inbox: [][]byte{[]byte(welcome)}, size: len(welcome)}
}

func (s *store) login(username, password string) error {
	u := subtle.ConstantTimeCompare([]byte(username), []byte(s.user))
	p := subtle.ConstantTimeCompare([]byte(password), []byte(s.password))
	if u&p != 1 {
		return ErrBadCredentials
	}
	return nil
}

func (s *store) deliver(data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The lab runs unattended: keep its memory bounded by dropping the
	// oldest messages, by count and by total size.
	// A message that could never fit is refused before anything is
	// dropped for it.
	if len(data) > s.maxBytes {
		return fmt.Errorf("lab: message of %d bytes exceeds the lab store", len(data))
	}
	for len(s.inbox) > 0 && (len(s.inbox) >= s.maxMessages || s.size+len(data) > s.maxBytes) {
		s.size -= len(s.inbox[0])
		s.inbox = s.inbox[1:]
	}
	s.inbox = append(s.inbox, append([]byte(nil), data...))
	s.size += len(data)
	return nil
}

func (s *store) messages() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.inbox...)
}

// smtpBackend, imapBackend and pop3Backend adapt the store to the protocol
// packages' Backend interfaces.
type smtpBackend struct{ s *store }

func (b smtpBackend) Login(_ context.Context, u, p string) error { return b.s.login(u, p) }
func (b smtpBackend) Deliver(_ context.Context, from string, to []string, data []byte) error {
	return b.s.deliver(data)
}

type imapBackend struct{ s *store }

func (b imapBackend) Login(_ context.Context, u, p string) error { return b.s.login(u, p) }
func (b imapBackend) Mailboxes(_ context.Context, user string) ([]string, error) {
	return []string{"INBOX"}, nil
}
func (b imapBackend) Messages(_ context.Context, user, mailbox string) ([][]byte, error) {
	if mailbox != "INBOX" {
		return nil, fmt.Errorf("lab: no mailbox %q", mailbox)
	}
	return b.s.messages(), nil
}

type pop3Backend struct{ s *store }

func (b pop3Backend) Login(_ context.Context, u, p string) error { return b.s.login(u, p) }
func (b pop3Backend) Messages(_ context.Context, user string) ([][]byte, error) {
	return b.s.messages(), nil
}
