package seccompagent

import (
	"sync"
	"time"
)

// Bounds on the rate at which one container's calls are answered: past
// it the agent waits before answering, so a workload that floods its agent
// slows itself down, not the node (each answer costs the shim a few
// microseconds of CPU). Ordinary workloads make few calls their profile
// would deny: in enforce mode each would be an error.
const (
	maxRate  = 10000 // answers per second, per container
	maxBurst = 1000
)

// limiter is a token bucket shared by a container's descriptor loops.
type limiter struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newLimiter(rate int, now func() time.Time) *limiter {
	if rate <= 0 {
		rate = maxRate
	}
	return &limiter{rate: float64(rate), tokens: maxBurst, last: now(), now: now}
}

// delay takes a token and says how long to wait before answering.
func (l *limiter) delay() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.now()
	l.tokens = min(maxBurst, l.tokens+t.Sub(l.last).Seconds()*l.rate)
	l.last = t
	l.tokens--
	if l.tokens >= 0 {
		return 0
	}
	return time.Duration(-l.tokens / l.rate * float64(time.Second))
}
