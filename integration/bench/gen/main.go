// Command gen is the helper of the benchmark scripts in integration/bench:
// it writes the deterministic parts of the dataset, mutates a dataset
// deterministically (and reverts the mutation), and summarises measurements.
//
// It uses the standard library only. The scripts build it in a scratch module
// outside the checkout (see dataset.sh), so it never depends on the state of
// the project's go.mod.
//
// Subcommands:
//
//	gen smallfiles DIR COUNT SEED   COUNT text-like files (100 B .. 64 KiB) in a tree
//	gen random FILE SIZE SEED       SIZE bytes of incompressible data (ChaCha8)
//	gen mutate DIR SEED PERCENT UNDO   change PERCENT % of DIR's regular files; undo log in UNDO
//	gen revert DIR UNDO             undo what mutate did (contents, sizes, mtimes)
//	gen report RAW.tsv OUT.json     medians per tool and metric, hindsight/peer ratios
//
// Everything depends only on the seeds and on the sorted list of file names,
// so two runs with the same arguments produce byte-identical results.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "smallfiles":
		need(args, 3)
		err = smallFiles(args[0], atoi(args[1]), args[2])
	case "random":
		need(args, 3)
		err = randomFile(args[0], atoi(args[1]), args[2])
	case "mutate":
		need(args, 4)
		pct, perr := strconv.ParseFloat(args[2], 64)
		if perr != nil {
			usage()
		}
		err = mutate(args[0], args[1], pct, args[3])
	case "revert":
		need(args, 2)
		err = revert(args[0], args[1])
	case "report":
		need(args, 2)
		err = report(args[0], args[1])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage:
  gen smallfiles DIR COUNT SEED
  gen random FILE SIZE SEED
  gen mutate DIR SEED PERCENT UNDODIR
  gen revert DIR UNDODIR
  gen report RAW.tsv OUT.json`)
	os.Exit(2)
}

func need(args []string, n int) {
	if len(args) != n {
		usage()
	}
}

func atoi(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		usage()
	}
	return n
}

// rng returns a ChaCha8 generator keyed by the seed string and a purpose.
// ChaCha8's output is fixed by its specification, so it does not change with
// the Go version.
func rng(seed, purpose string) *rand.ChaCha8 {
	var key [32]byte
	h := fnv.New128a()
	h.Write([]byte(seed))
	h.Write([]byte{0})
	h.Write([]byte(purpose))
	copy(key[:16], h.Sum(nil))
	h.Write([]byte{1})
	copy(key[16:], h.Sum(nil))
	return rand.NewChaCha8(key)
}

// baseTime is the modification time of generated files: fixed, so that the
// dataset's metadata is as deterministic as its contents.
var baseTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// words is the vocabulary of generated text files. Text made of it
// compresses roughly like source code (about 3-4x with zstd).
var words = strings.Fields(`func return if else for range var const type struct interface map chan
go defer select case switch default break continue package import nil true false err error string
int int64 uint8 byte rune bool float64 len cap make new append copy delete panic recover close
ctx context buf data result value key index count size offset length name path file dir node tree
chunk blob pack repo snapshot backup restore hash sum total read write open create remove sync
fmt.Errorf errors.New os.Open io.Reader io.Writer bytes.Buffer strings.Builder sort.Slice
(a, b) {} [] := = == != <= >= && || + - * / % << >> // TODO: note: the a an of to in is it that`)

// smallFiles writes count text-like files below dir, spread over a two-level
// directory tree of about 100 files per directory.
func smallFiles(dir string, count int64, seed string) error {
	r := rand.New(rng(seed, "smallfiles"))
	perDir := int64(100)
	var buf []byte
	for i := int64(0); i < count; i++ {
		d := i / perDir
		sub := filepath.Join(dir, fmt.Sprintf("g%03d", d/100), fmt.Sprintf("d%04d", d))
		if i%perDir == 0 {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				return err
			}
		}
		// Log-uniform sizes from 100 B to 64 KiB: most files are small,
		// a few are larger, like a source tree.
		size := int(math.Exp(math.Log(100) + r.Float64()*(math.Log(64<<10)-math.Log(100))))
		buf = textBytes(r, buf[:0], size)
		name := filepath.Join(sub, fmt.Sprintf("f%06d.%s", i, []string{"go", "txt", "c", "md", "json"}[r.IntN(5)]))
		if err := os.WriteFile(name, buf, 0o644); err != nil {
			return err
		}
		mt := baseTime.Add(time.Duration(i) * time.Second)
		if err := os.Chtimes(name, mt, mt); err != nil {
			return err
		}
	}
	return nil
}

// textBytes appends size bytes of word soup with newlines to buf. Every file
// starts with a line that holds random digits, so no two files are equal.
func textBytes(r *rand.Rand, buf []byte, size int) []byte {
	buf = fmt.Appendf(buf, "// id %016x%016x\n", r.Uint64(), r.Uint64())
	col := 0
	for len(buf) < size {
		w := words[r.IntN(len(words))]
		buf = append(buf, w...)
		col += len(w) + 1
		if col > 60+r.IntN(40) {
			buf = append(buf, '\n')
			if r.IntN(4) == 0 {
				buf = append(buf, '\t')
			}
			col = 0
		} else {
			buf = append(buf, ' ')
		}
	}
	return buf[:size]
}

// randomFile writes size bytes of ChaCha8 output to name.
func randomFile(name string, size int64, seed string) error {
	c := rng(seed, "random")
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := int64(len(buf))
		if left < n {
			n = left
		}
		c.Read(buf[:n])
		if _, err := w.Write(buf[:n]); err != nil {
			f.Close()
			return err
		}
		left -= n
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Chtimes(name, baseTime, baseTime)
}

// undoEntry records how to bring one mutated file back.
type undoEntry struct {
	Path    string    `json:"path"`    // relative to the dataset root
	Size    int64     `json:"size"`    // original size
	Mtime   time.Time `json:"mtime"`   // original mtime (also set as atime on revert)
	Offset  int64     `json:"offset"`  // where Saved goes back
	Saved   string    `json:"saved"`   // file in the undo dir with the original bytes at Offset, or ""
	Kind    string    `json:"kind"`    // append, overwrite, rewrite
	Changed int64     `json:"changed"` // bytes written by the mutation
}

// mutate changes pct percent of the regular files below dir (at least one):
// the two largest, and the others chosen by a seeded shuffle of the sorted
// file list. Each chosen file is
// appended to, overwritten in place, or (if small) rewritten whole. The
// original bytes and times are saved in undo so that revert can restore them.
func mutate(dir, seed string, pct float64, undo string) error {
	if _, err := os.Stat(filepath.Join(undo, "undo.json")); err == nil {
		return fmt.Errorf("%s already holds an undo log: revert first", undo)
	}
	if err := os.MkdirAll(undo, 0o755); err != nil {
		return err
	}
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	n := int(math.Ceil(float64(len(files)) * pct / 100))
	n = max(1, min(n, len(files)))
	// The two largest files are always among the chosen (with the dataset
	// of dataset.sh: the ext4 image and one 512 MiB file), so that the
	// change includes the common case of a large file modified in place;
	// the rest is a seeded shuffle of the other files.
	sizes := make(map[string]int64, len(files))
	for _, f := range files {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			return err
		}
		sizes[f] = st.Size()
	}
	bySize := slices.Clone(files)
	sort.SliceStable(bySize, func(i, j int) bool { return sizes[bySize[i]] > sizes[bySize[j]] })
	forced := bySize[:min(2, n)]
	var rest []string
	for _, f := range files {
		if !slices.Contains(forced, f) {
			rest = append(rest, f)
		}
	}
	r := rand.New(rng(seed, "mutate"))
	r.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	chosen := append(slices.Clone(forced), rest[:n-len(forced)]...)
	slices.Sort(chosen)

	var log []undoEntry
	var changed int64
	// Write the undo log even if a mutation fails half way, so that revert
	// can undo what was done.
	defer func() {
		b, _ := json.MarshalIndent(log, "", " ")
		os.WriteFile(filepath.Join(undo, "undo.json"), b, 0o644)
	}()
	for i, rel := range chosen {
		p := filepath.Join(dir, rel)
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		e := undoEntry{Path: rel, Size: st.Size(), Mtime: st.ModTime()}
		var data []byte
		switch k := r.IntN(10); {
		case slices.Contains(forced, rel) && st.Size() > 0:
			// A large file changed in place, like a disk image.
			e.Kind = "overwrite"
			data = randBytes(r, 16+r.IntN(4096))
			if int64(len(data)) > st.Size() {
				data = data[:st.Size()]
			}
			e.Offset = r.Int64N(st.Size() - int64(len(data)) + 1)
		case k < 4 || st.Size() == 0:
			e.Kind = "append"
			data = randBytes(r, 16+r.IntN(4096))
			e.Offset = st.Size()
		case k < 8 || st.Size() > 1<<20:
			e.Kind = "overwrite"
			data = randBytes(r, 16+r.IntN(4096))
			if int64(len(data)) > st.Size() {
				data = data[:st.Size()]
			}
			e.Offset = r.Int64N(st.Size() - int64(len(data)) + 1)
		default:
			e.Kind = "rewrite"
			data = randBytes(r, int(st.Size()))
			e.Offset = 0
		}
		if e.Kind != "append" {
			orig := make([]byte, len(data))
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = f.ReadAt(orig, e.Offset)
			f.Close()
			if err != nil {
				return err
			}
			e.Saved = fmt.Sprintf("%06d.orig", i)
			if err := os.WriteFile(filepath.Join(undo, e.Saved), orig, 0o600); err != nil {
				return err
			}
		}
		e.Changed = int64(len(data))
		log = append(log, e) // before the write: a failed write is still undone
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_, err = f.WriteAt(data, e.Offset)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		changed += e.Changed
	}
	fmt.Printf("mutated %d of %d files (%.2f%%), %d bytes written\n", n, len(files), 100*float64(n)/float64(len(files)), changed)
	return nil
}

// randBytes returns n random bytes; the mutations are incompressible so that
// every tool has to store them.
func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n]
}

// revert undoes a mutation recorded in undo and removes the undo log.
func revert(dir, undo string) error {
	b, err := os.ReadFile(filepath.Join(undo, "undo.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing to revert
	}
	if err != nil {
		return err
	}
	var log []undoEntry
	if err := json.Unmarshal(b, &log); err != nil {
		return err
	}
	for _, e := range log {
		p := filepath.Join(dir, e.Path)
		if e.Saved != "" {
			orig, err := os.ReadFile(filepath.Join(undo, e.Saved))
			if err != nil {
				return err
			}
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			_, err = f.WriteAt(orig, e.Offset)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
		if err := os.Truncate(p, e.Size); err != nil {
			return err
		}
		if err := os.Chtimes(p, e.Mtime, e.Mtime); err != nil {
			return err
		}
	}
	fmt.Printf("reverted %d files\n", len(log))
	return os.RemoveAll(undo)
}

// Metrics in the order they are reported, with their unit and which peer
// the project's targets compare hindsight with.
var metrics = []struct {
	key, label, unit string
}{
	{"first_backup_s", "first backup", "s"},
	{"nochange_backup_s", "no-change backup", "s"},
	{"incr_backup_s", "backup after 1% change", "s"},
	{"restore_s", "full restore", "s"},
	{"peak_rss_mib", "peak RSS, backup/restore", "MiB"},
	{"repo_size_mib", "repository size", "MiB"},
}

// report reads tab-separated lines "rep tool metric value" and writes a table
// of medians to stdout and all raw values, medians and ratios as JSON.
func report(rawPath, outPath string) error {
	f, err := os.Open(rawPath)
	if err != nil {
		return err
	}
	defer f.Close()
	vals := map[string]map[string][]float64{} // tool -> metric -> values
	var tools []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Split(line, "\t")
		if len(fs) != 4 {
			return fmt.Errorf("bad line %q", line)
		}
		v, err := strconv.ParseFloat(fs[3], 64)
		if err != nil {
			return fmt.Errorf("bad value in %q", line)
		}
		tool, metric := fs[1], fs[2]
		if vals[tool] == nil {
			vals[tool] = map[string][]float64{}
			tools = append(tools, tool)
		}
		vals[tool][metric] = append(vals[tool][metric], v)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	order := map[string]int{"hindsight": 0, "restic": 1, "kopia": 2}
	sort.Slice(tools, func(i, j int) bool { return order[tools[i]] < order[tools[j]] })

	med := map[string]map[string]float64{}
	for _, t := range tools {
		med[t] = map[string]float64{}
		for m, vs := range vals[t] {
			med[t][m] = median(vs)
		}
	}
	w := os.Stdout
	fmt.Fprintf(w, "\nMedians (%s):\n", repsSummary(vals))
	fmt.Fprintf(w, "%-30s", "metric")
	for _, t := range tools {
		fmt.Fprintf(w, " %12s", t)
	}
	fmt.Fprintln(w)
	for _, m := range metrics {
		fmt.Fprintf(w, "%-30s", m.label+" ("+m.unit+")")
		for _, t := range tools {
			if v, ok := med[t][m.key]; ok {
				fmt.Fprintf(w, " %12.2f", v)
			} else {
				fmt.Fprintf(w, " %12s", "-")
			}
		}
		fmt.Fprintln(w)
	}

	ratios := map[string]map[string]float64{}
	if h, ok := med["hindsight"]; ok && len(tools) > 1 {
		fmt.Fprintf(w, "\nhindsight / peer (lower is better for hindsight):\n")
		fmt.Fprintf(w, "%-30s", "metric")
		for _, t := range tools[1:] {
			fmt.Fprintf(w, " %12s", "/"+t)
		}
		fmt.Fprintln(w)
		for _, m := range metrics {
			fmt.Fprintf(w, "%-30s", m.label)
			for _, t := range tools[1:] {
				hv, ok1 := h[m.key]
				pv, ok2 := med[t][m.key]
				if ok1 && ok2 && pv > 0 {
					if ratios[t] == nil {
						ratios[t] = map[string]float64{}
					}
					ratios[t][m.key] = hv / pv
					fmt.Fprintf(w, " %12.2f", hv/pv)
				} else {
					fmt.Fprintf(w, " %12s", "-")
				}
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "\nTargets (not asserted): first backup <= 0.5x kopia, no-change backup <= 0.5x kopia,\n"+
			"restore <= 0.5x restic, peak RSS <= 80 MB (76 MiB), repository size <= restic's (ratio <= 1).\n")
	}

	for _, t := range tools {
		if n := len(vals[t]["failed"]); n > 0 {
			fmt.Fprintf(w, "\nNOTE: %s failed in %d rep(s); its medians cover the steps that completed.\n", t, n)
		}
	}

	out := map[string]any{
		"raw":     vals,
		"medians": med,
		"ratios":  ratios, // hindsight / peer, keyed by peer
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(outPath, append(b, '\n'), 0o644)
}

func repsSummary(vals map[string]map[string][]float64) string {
	n := 0
	for _, ms := range vals {
		for _, vs := range ms {
			n = max(n, len(vs))
		}
	}
	return fmt.Sprintf("%d rep(s)", n)
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s) == 0 {
		return math.NaN()
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
