package proxy

import (
	"sync"
	"syscall"
)

// The parker lets the backend-to-client direction of an idle relay wait
// for its socket without a goroutine: it registers the socket with one
// process-wide epoll instance (one-shot) and its goroutine ends; when the
// backend sends, the epoll goroutine starts a new one. The client-to-backend
// direction keeps its goroutine, blocked in Go's own poller, which watches
// the deadlines, the client going away and shutdown, and takes the other
// direction out of the parker (kick) when it ends. An idle connection so
// costs one small goroutine instead of two.
type parker struct {
	epfd    int
	mu      sync.Mutex
	waiting map[int]func() // fd → how to resume the parked direction
	added   map[int]bool   // fd registered with epfd (one-shot, maybe fired)
}

var (
	parkOnce   sync.Once
	thePark    *parker
	parkEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLERR | syscall.EPOLLHUP | (1 << 30) // EPOLLONESHOT
)

// getParker returns the process's parker, or nil when epoll is not
// available (the relay then keeps both goroutines).
func getParker() *parker {
	parkOnce.Do(func() {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return
		}
		thePark = &parker{epfd: fd, waiting: map[int]func(){}, added: map[int]bool{}}
		go thePark.loop()
	})
	return thePark
}

func (p *parker) loop() {
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			return
		}
		for i := range n {
			fd := int(events[i].Fd)
			p.mu.Lock()
			resume := p.waiting[fd]
			delete(p.waiting, fd)
			p.mu.Unlock()
			if resume != nil {
				go resume()
			}
		}
	}
}

// park registers fd and resume; it reports false (and registers nothing)
// when it cannot, and the caller waits the ordinary way.
func (p *parker) park(fd int, resume func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	ev := syscall.EpollEvent{Events: uint32(parkEvents), Fd: int32(fd)}
	op := syscall.EPOLL_CTL_MOD
	if !p.added[fd] {
		op = syscall.EPOLL_CTL_ADD
	}
	if err := syscall.EpollCtl(p.epfd, op, fd, &ev); err != nil {
		return false
	}
	p.added[fd] = true
	p.waiting[fd] = resume
	return true
}

// kick takes fd out of the parker and returns its resume function, or nil
// when it was not parked (it is running, or the epoll goroutine has just
// taken it).
func (p *parker) kick(fd int) func() {
	p.mu.Lock()
	defer p.mu.Unlock()
	resume := p.waiting[fd]
	delete(p.waiting, fd)
	return resume
}

// forget unregisters fd before its socket is closed, so that a later
// socket with the same number starts afresh.
func (p *parker) forget(fd int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.added[fd] {
		syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
		delete(p.added, fd)
	}
	delete(p.waiting, fd)
}
