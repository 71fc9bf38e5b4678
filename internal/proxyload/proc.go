package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A proxy is measured as a process tree: the pid the script started and
// every descendant (HAProxy's worker, stunnel's children if it forks). Its
// threads are inside each process's counters already.

// procStat is what proxyload reads from /proc/PID/stat.
type procStat struct {
	PPID         int
	UTime, STime uint64 // clock ticks, this process and its dead threads
}

// parseStat parses the contents of /proc/PID/stat. The command name (field
// 2) is in parentheses and may hold spaces and parentheses itself: the
// fields that follow begin after the last ')'.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("stat: no ')' after the command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("stat: %d fields after the name, want at least 13", len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("stat: ppid: %w", err)
	}
	ut, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("stat: utime: %w", err)
	}
	st, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("stat: stime: %w", err)
	}
	return procStat{PPID: ppid, UTime: ut, STime: st}, nil
}

// parseRSS returns VmRSS from the contents of /proc/PID/status, in bytes.
// A process without it (a zombie) has no resident memory.
func parseRSS(b []byte) (int64, error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("status: VmRSS line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 {
			return 0, fmt.Errorf("status: VmRSS %q", f[0])
		}
		return kb << 10, nil
	}
	return 0, nil
}

// procfs reads a process tree under root ("/proc").
type procfs struct{ root string }

// tree returns pid and its descendants (pid first). A pid that does not
// exist is an error: the proxy died.
func (p procfs) tree(pid int) ([]int, error) {
	if _, err := os.Stat(filepath.Join(p.root, strconv.Itoa(pid))); err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	ents, err := os.ReadDir(p.root)
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(p.root, e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		st, err := parseStat(b)
		if err != nil {
			continue
		}
		children[st.PPID] = append(children[st.PPID], n)
	}
	out := []int{pid}
	for i := 0; i < len(out) && i < 4096; i++ {
		out = append(out, children[out[i]]...)
	}
	return out, nil
}

// snapshot is a snapshot of a process tree: CPU time and resident memory.
type snapshot struct {
	CPUTicks uint64
	RSS      int64
	Procs    int
}

func (p procfs) usage(pid int) (snapshot, error) {
	pids, err := p.tree(pid)
	if err != nil {
		return snapshot{}, err
	}
	var u snapshot
	for _, q := range pids {
		dir := filepath.Join(p.root, strconv.Itoa(q))
		b, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			if q == pid {
				return snapshot{}, err
			}
			continue
		}
		st, err := parseStat(b)
		if err != nil {
			return snapshot{}, err
		}
		b, err = os.ReadFile(filepath.Join(dir, "status"))
		if err != nil {
			if q == pid {
				return snapshot{}, err
			}
			continue
		}
		rss, err := parseRSS(b)
		if err != nil {
			return snapshot{}, err
		}
		u.CPUTicks += st.UTime + st.STime
		u.RSS += rss
		u.Procs++
	}
	return u, nil
}

// clockTicks is the kernel's USER_HZ, the unit of utime and stime: the
// AT_CLKTCK entry of the auxiliary vector (no cgo for sysconf), else 100.
func clockTicks() float64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	if hz := auxvClockTicks(b); hz > 0 && hz <= 100000 {
		return float64(hz)
	}
	return 100
}

// auxvClockTicks finds AT_CLKTCK (17) in a 64-bit little-endian auxiliary
// vector, or returns 0.
func auxvClockTicks(b []byte) uint64 {
	const atClkTck, atNull = 17, 0
	for len(b) >= 16 {
		k, v := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
		switch k {
		case atNull:
			return 0
		case atClkTck:
			return v
		}
		b = b[16:]
	}
	return 0
}
