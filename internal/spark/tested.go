package spark

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
)

//go:embed tested.txt
var testedTxt string

// Line is a line of Spark releases sparkplane is tested with (tested.txt, the one place the
// pinned releases are written).
type Line struct {
	Name    string // "3.5", "4"
	Release string // the release tested, e.g. 4.3.0
	Scala   string // the Scala binary version of its jars
	Maven   string // the release of Spark's Maven artifacts that examples/jvm compiles against
	Java    []int  // the Java majors that run it, oldest first
}

// TestedLines are the lines in tested.txt, oldest first.
func TestedLines() []Line {
	var lines []Line
	for _, l := range strings.Split(testedTxt, "\n") {
		f := strings.Fields(l)
		if len(f) < 5 || strings.HasPrefix(f[0], "#") {
			continue
		}
		ln := Line{Name: f[0], Release: f[1], Scala: f[2], Maven: f[3]}
		for _, j := range f[4:] {
			n, err := strconv.Atoi(j)
			if err != nil {
				panic(fmt.Sprintf("tested.txt: %q is not a Java major", j))
			}
			ln.Java = append(ln.Java, n)
		}
		lines = append(lines, ln)
	}
	return lines
}

// DefaultVersion is the release a spec gets when it names none: the newest line's tested release.
func DefaultVersion() string {
	l := TestedLines()
	return l[len(l)-1].Release
}

// LineOf is the tested line a release belongs to ("4.1.2" → line "4", "3.5.1" → "3.5"), and
// false for a release of no tested line.
func LineOf(version string) (Line, bool) {
	for _, l := range TestedLines() {
		if version == l.Name || strings.HasPrefix(version, l.Name+".") {
			return l, true
		}
	}
	return Line{}, false
}

// javaNeeds says which Java majors run a Spark release: the oldest it accepts, and the newest
// sparkplane has seen it run on (0 when unknown). Releases of no tested line follow Spark's
// documented needs: 3.x runs on 8 and later, 4.x on 17 and later.
func javaNeeds(version string) (oldest, newest int) {
	if l, ok := LineOf(version); ok {
		return l.Java[0], l.Java[len(l.Java)-1]
	}
	if strings.HasPrefix(version, "3.") {
		return 8, 0
	}
	return 17, 0
}
