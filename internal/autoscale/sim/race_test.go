//go:build race

package sim

// raceEnabled: the race detector slows the single-threaded replay of a whole day tenfold and
// finds nothing there; hack/test.sh replays it without it.
const raceEnabled = true
