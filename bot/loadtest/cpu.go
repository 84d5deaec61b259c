package loadtest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of /proc's CPU times; 100 on every Linux build Go
// supports.
const clockTick = 10 * time.Millisecond

// cpuSample is the CPU time used so far by the machine, this process and the bot
// processes. The harness shares the machine with what it measures, and on a shared
// development box with whatever else runs: the report says who used the cores.
type cpuSample struct {
	at      time.Time
	machine time.Duration // busy time of all cores
	self    time.Duration
	bots    time.Duration
}

func (f *fleet) cpu() cpuSample {
	s := cpuSample{at: time.Now()}
	s.machine, _ = machineBusy()
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	for _, r := range f.replicas {
		if r.p == nil {
			continue
		}
		if pid := r.p.pid(); pid > 0 {
			d, _ := procCPU(pid)
			s.bots += d
		}
	}
	return s
}

// CPUUse is how many cores were busy, on average, over a run.
type CPUUse struct {
	Machine, Harness, Bots float64 // Harness: this process (in-process bots included)
	BotPerUpdate           time.Duration
}

// Other is the cores used by neither this process nor the bot processes: Redis, the
// kernel's network work, and anything else running on the machine.
func (c CPUUse) Other() float64 { return max(c.Machine-c.Harness-c.Bots, 0) }

func cpuUse(a, b cpuSample, updates int64, exec bool) CPUUse {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return CPUUse{}
	}
	u := CPUUse{
		Machine: (b.machine - a.machine).Seconds() / wall,
		Harness: (b.self - a.self).Seconds() / wall,
		Bots:    (b.bots - a.bots).Seconds() / wall,
	}
	if updates > 0 {
		bots := b.bots - a.bots
		if !exec {
			bots = b.self - a.self
		}
		u.BotPerUpdate = bots / time.Duration(updates)
	}
	return u
}

// machineBusy is the busy time of all cores from /proc/stat.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, fmt.Errorf("loadtest: unexpected /proc/stat: %q", line)
	}
	var busy int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("loadtest: /proc/stat: %w", err)
		}
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return time.Duration(busy) * clockTick, nil
}

// procCPU is a process's user and system time from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; the fields after it are fixed.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0, fmt.Errorf("loadtest: short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("loadtest: parse /proc/%d/stat", pid)
	}
	return time.Duration(ut+st) * clockTick, nil
}
