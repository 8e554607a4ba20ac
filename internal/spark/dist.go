// Package spark holds everything sparkplane knows about Apache Spark's own interfaces: where a
// distribution comes from, how its daemons are launched, the configuration files they read, the
// master's JSON status, job submission with spark-submit or the REST server, and decommissioning.
// Formats follow Spark's source exactly (see shared/spark/PROTOCOL.md); nothing here reimplements
// Spark.
package spark

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultMirrors are tried in order when the spec names no mirror. The archive keeps every
// release; the CDN is faster but holds only current ones.
var DefaultMirrors = []string{"https://dlcdn.apache.org", "https://archive.apache.org/dist"}

// Package is the binary package sparkplane uses: Spark built for Hadoop 3 (3.3 and later).
const Package = "hadoop3"

// Distribution is an unpacked Spark on this machine.
type Distribution struct {
	Home    string // SPARK_HOME
	Version string // from the RELEASE file, else from the name of its spark-core jar; empty when neither says
	Scala   string // the Scala binary version of its jars (2.12, 2.13), when its spark-core jar says
	Tarball string // the verified .tgz it came from, when sparkplane downloaded it
	// PySpark is set for the Spark inside a pip-installed pyspark package (no RELEASE file, no
	// sbin/start-*.sh; sparkplane needs neither).
	PySpark bool
	// From says where it was found, for the user: "SPARK_HOME", "the pyspark of python3", ….
	From string
}

// ResolveOptions says where to look for Spark.
type ResolveOptions struct {
	Version  string   // wanted release, e.g. 3.5.3
	Home     string   // an unpacked Spark given by the user (flag, spec or SPARK_HOME); used as is
	Mirrors  []string // base URLs; DefaultMirrors when empty
	CacheDir string   // where downloads are unpacked and kept
	Client   *http.Client
	// Progress, when set, is called as a download proceeds (total is -1 when unknown).
	Progress func(done, total int64)
}

// TarballName is the file name of a release's binary package.
func TarballName(version string) string {
	return fmt.Sprintf("spark-%s-bin-%s.tgz", version, Package)
}

// TarballURL is where a mirror keeps a release's binary package.
func TarballURL(mirror, version string) string {
	return fmt.Sprintf("%s/spark/spark-%s/%s", strings.TrimRight(mirror, "/"), version, TarballName(version))
}

// Resolve finds Spark: the given home, else a verified copy in the cache, else a download from
// the mirrors that is checked against the release's SHA-512 before it is unpacked.
func Resolve(ctx context.Context, o ResolveOptions) (*Distribution, error) {
	if o.Home != "" {
		return OpenHome(o.Home)
	}
	if o.CacheDir == "" {
		return nil, errors.New("no Spark: set SPARK_HOME or --spark-home, or give a cache directory")
	}
	dir := filepath.Join(o.CacheDir, strings.TrimSuffix(TarballName(o.Version), ".tgz"))
	tarball := filepath.Join(o.CacheDir, TarballName(o.Version))
	if d, err := openVerified(dir, tarball); err == nil {
		return d, nil
	}
	if err := os.MkdirAll(o.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("spark cache: %w", err)
	}
	// One download per release at a time, across processes.
	unlock, err := lockFile(ctx, filepath.Join(o.CacheDir, ".lock-"+o.Version))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if d, err := openVerified(dir, tarball); err == nil {
		return d, nil // another process finished it while we waited
	}

	mirrors := o.Mirrors
	if len(mirrors) == 0 {
		mirrors = DefaultMirrors
	}
	var errs []error
	for _, m := range mirrors {
		err := download(ctx, o, m, tarball)
		if err == nil {
			errs = nil
			break
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		errs = append(errs, err)
		var ce *ChecksumError
		if errors.As(err, &ce) {
			break // a bad file is not a mirror problem to route around
		}
	}
	if errs != nil {
		return nil, fmt.Errorf("could not download Spark %s: %w; pip install pyspark==%s (sparkplane uses the pyspark python3 imports), "+
			"set SPARK_HOME or --spark-home to an unpacked Spark or a pyspark package directory, or set spark.mirror to a mirror you can reach",
			o.Version, errors.Join(errs...), o.Version)
	}
	if err := unpack(tarball, o.CacheDir, dir); err != nil {
		os.Remove(tarball)
		return nil, fmt.Errorf("unpack Spark %s: %w", o.Version, err)
	}
	if err := os.WriteFile(filepath.Join(dir, verifiedMarker), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return nil, err
	}
	return openVerified(dir, tarball)
}

// verifiedMarker is written into an unpacked release once its tarball passed its checksum.
const verifiedMarker = ".sparkplane-verified"

func openVerified(dir, tarball string) (*Distribution, error) {
	if _, err := os.Stat(filepath.Join(dir, verifiedMarker)); err != nil {
		return nil, err
	}
	d, err := OpenHome(dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(tarball); err == nil {
		d.Tarball = tarball
	}
	return d, nil
}

// OpenHome checks that dir is an unpacked Spark and reads its version.
func OpenHome(dir string) (*Distribution, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for _, f := range []string{"bin/spark-class", "bin/spark-submit"} {
		st, err := os.Stat(filepath.Join(abs, f))
		if err != nil {
			if _, perr := os.Stat(filepath.Join(abs, "pyspark", f)); perr == nil {
				return nil, fmt.Errorf("%s is not a Spark distribution, but it holds a pyspark package: use %s", abs, filepath.Join(abs, "pyspark"))
			}
			return nil, fmt.Errorf("%s is not a Spark distribution: %s is missing", abs, f)
		}
		if st.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("%s is not executable", filepath.Join(abs, f))
		}
	}
	d := &Distribution{Home: abs, Version: readRelease(abs)}
	if jars, _ := filepath.Glob(filepath.Join(abs, "jars", "spark-core_*.jar")); len(jars) == 1 {
		if m := coreJarRe.FindStringSubmatch(filepath.Base(jars[0])); m != nil {
			d.Scala = m[1]
			if d.Version == "" {
				d.Version = m[2]
			}
		}
	}
	_, err = os.Stat(filepath.Join(abs, "find_spark_home.py"))
	d.PySpark = err == nil
	return d, nil
}

// coreJarRe reads spark-core_2.13-4.0.1.jar.
var coreJarRe = regexp.MustCompile(`^spark-core_(\d+\.\d+)-(\d+\.\d+\.\d+[^/]*)\.jar$`)

// readRelease reads the version from SPARK_HOME/RELEASE ("Spark 3.5.3 built for Hadoop 3.3.4").
func readRelease(home string) string {
	b, err := os.ReadFile(filepath.Join(home, "RELEASE"))
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) >= 2 && f[0] == "Spark" {
		return f[1]
	}
	return ""
}

// ChecksumError means a downloaded file did not match its published SHA-512.
type ChecksumError struct {
	URL       string
	Want, Got string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s failed its SHA-512 check (published %s…, downloaded %s…); the file was deleted", e.URL, e.Want[:16], e.Got[:16])
}

func download(ctx context.Context, o ResolveOptions, mirror, dest string) error {
	client := o.Client
	if client == nil {
		client = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, ResponseHeaderTimeout: 30 * time.Second}}
	}
	url := TarballURL(mirror, o.Version)
	sumText, err := fetchSmall(ctx, client, url+".sha512")
	if err != nil {
		return err
	}
	want, err := ParseSHA512(sumText)
	if err != nil {
		return fmt.Errorf("%s.sha512: %w", url, err)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dest), ".download-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	h := sha512.New()
	var body io.Reader = resp.Body
	if o.Progress != nil {
		body = &progressReader{r: resp.Body, total: resp.ContentLength, fn: o.Progress}
	}
	if _, err := io.Copy(io.MultiWriter(tmp, h), body); err != nil {
		tmp.Close()
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return &ChecksumError{URL: url, Want: want, Got: got}
	}
	return os.Rename(tmp.Name(), dest)
}

func fetchSmall(ctx context.Context, client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return string(b), err
}

// ParseSHA512 reads a published checksum leniently: shasum's "<hex>  name" and gpg's
// "name: HEX HEX …" (grouped, upper-case, over several lines) both work.
func ParseSHA512(text string) (string, error) {
	s := text
	if name, rest, ok := strings.Cut(s, ":"); ok && !strings.ContainsAny(strings.TrimSpace(name), " \t\n") {
		s = rest
	} else if f := strings.Fields(s); len(f) > 0 {
		s = f[0]
	}
	s = strings.ToLower(strings.Join(strings.Fields(s), ""))
	if len(s) != 128 {
		return "", fmt.Errorf("no SHA-512 found in %q", firstLine(text))
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", fmt.Errorf("no SHA-512 found in %q", firstLine(text))
	}
	return s, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

type progressReader struct {
	r     io.Reader
	done  int64
	total int64
	fn    func(done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	p.fn(p.done, p.total)
	return n, err
}

// unpack extracts a release tarball (one top-level directory) into dir, through a temporary
// directory so that a half-unpacked release is never mistaken for a whole one.
func unpack(tarball, parent, dir string) error {
	f, err := os.Open(tarball)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, ".unpack-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	tr := tar.NewReader(gz)
	top := ""
	realDirs := map[string]bool{".": true} // directories known to be no link
	var links []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("refusing entry %q outside the archive", h.Name)
		}
		first, _, _ := strings.Cut(name, "/")
		if top == "" {
			top = first
		} else if first != top {
			return fmt.Errorf("archive has more than one top-level directory (%s, %s)", top, first)
		}
		target := filepath.Join(tmp, name)
		// Nothing is written through a link, so that links, each checked alone, cannot be
		// chained out of the archive.
		if l := linkOnPath(tmp, filepath.Dir(name), realDirs); l != "" {
			return fmt.Errorf("refusing entry %q: it goes through the link %q", h.Name, l)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fs.FileMode(h.Mode)&0o755|0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			link := filepath.Join(filepath.Dir(name), h.Linkname)
			if filepath.IsAbs(h.Linkname) || link != top && !strings.HasPrefix(link, top+"/") {
				return fmt.Errorf("refusing link %q -> %q outside the archive", h.Name, h.Linkname)
			}
			links = append(links, name)
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		}
	}
	if top == "" {
		return errors.New("empty archive")
	}
	// A link may still name another (a/up/../..): each must end inside, at something there.
	root, err := filepath.EvalSymlinks(filepath.Join(tmp, top)) // the cache may itself be under a link
	if err != nil {
		return err
	}
	for _, name := range links {
		to, err := filepath.EvalSymlinks(filepath.Join(tmp, name))
		if err != nil {
			return fmt.Errorf("refusing link %q: it leads nowhere (%v)", name, err)
		}
		if to != root && !strings.HasPrefix(to, root+string(filepath.Separator)) {
			return fmt.Errorf("refusing link %q: it leads out of the archive", name)
		}
	}
	os.RemoveAll(dir)
	return os.Rename(filepath.Join(tmp, top), dir)
}

// linkOnPath returns the first of dir's components (relative to root) that is a symbolic link,
// or "" when there is none; known remembers the directories seen to be real.
func linkOnPath(root, dir string, known map[string]bool) string {
	if known[dir] {
		return ""
	}
	if l := linkOnPath(root, filepath.Dir(dir), known); l != "" {
		return l
	}
	fi, err := os.Lstat(filepath.Join(root, dir))
	if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return dir
	}
	if err == nil && fi.IsDir() {
		known[dir] = true
	}
	return ""
}

// lockFile takes an exclusive advisory lock, waiting until ctx ends.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Pack writes an unpacked distribution as a release tarball of the version: gzipped, its entries
// under spark-<version>-bin-hadoop3/, as Apache's are, so that Unpack reads it back. At gzip's
// fastest level: a distribution is mostly jars, compressed already, which deflate at its
// default level shrinks by a few per cent for several times the time.
func Pack(w io.Writer, dir, version string) error {
	top := strings.TrimSuffix(TarballName(version), ".tgz")
	gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	tw := tar.NewWriter(gz)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(filepath.Join(top, rel))
		if d.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// Unpack extracts a release tarball into dir (replacing it), as Resolve does with downloads.
func Unpack(tarball, dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	return unpack(tarball, filepath.Dir(dir), dir)
}
