package bench

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// Every function runs once per round, the first of a round rotates, and
// each function's samples come back in round order.
func TestRoundsRotatesAndKeepsRoundOrder(t *testing.T) {
	var order []int
	calls := map[int]int{}
	f := func(i int) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			order = append(order, i)
			calls[i]++
			return time.Duration(100*i + calls[i]), nil
		}
	}
	got, err := Rounds(3, f(0), f(1), f(2))
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 1, 2, 1, 2, 0, 2, 0, 1}; !slices.Equal(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
	for i, d := range got {
		want := []time.Duration{time.Duration(100*i + 1), time.Duration(100*i + 2), time.Duration(100*i + 3)}
		if !slices.Equal(d, want) {
			t.Errorf("samples of %d: %v, want %v", i, d, want)
		}
	}
}

func TestRoundsStopsAtTheFirstError(t *testing.T) {
	bad := errors.New("bad")
	n := 0
	_, err := Rounds(5, func() (time.Duration, error) { n++; return 0, nil }, func() (time.Duration, error) { return 0, bad })
	if !errors.Is(err, bad) || n != 1 {
		t.Fatalf("err %v after %d calls, want %v after 1", err, n, bad)
	}
}
