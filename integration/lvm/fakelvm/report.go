package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// positional returns the arguments that are not options or their values.
// withValue lists the options that take one.
func positional(args []string, withValue ...string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			for _, w := range withValue {
				if a == w {
					i++
				}
			}
			continue
		}
		out = append(out, a)
	}
	return out
}

var reportOptions = []string{"--reportformat", "--units", "-o", "--options", "-S", "--select"}

// printReport prints rows the way lvm2 prints --reportformat json.
func printReport(section string, rows []map[string]string) error {
	if rows == nil {
		rows = []map[string]string{}
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"report": []map[string]any{{section: rows}}})
}

func vgs(st *state, args []string) error {
	names := positional(args, reportOptions...)
	if len(names) == 0 {
		names = sortedKeys(st.VGs)
	}
	var rows []map[string]string
	for _, n := range names {
		g := st.VGs[n]
		if g == nil {
			return failf("Volume group %q not found", n)
		}
		free := g.Size - g.used()
		rows = append(rows, map[string]string{"vg_name": n, "vg_size": u(g.Size), "vg_free": u(free),
			"vg_extent_size": u(extentSize), "vg_free_count": u(free / extentSize)})
	}
	return printReport("vg", rows)
}

func u(n uint64) string { return strconv.FormatUint(n, 10) }

func lvs(st *state, args []string) error {
	sel := positional(args, reportOptions...)
	var rows []map[string]string
	invalidateAt, _ := strconv.Atoi(os.Getenv("FAKELVM_INVALIDATE_ON_QUERY"))
	for _, vgName := range sortedKeys(st.VGs) {
		g := st.VGs[vgName]
		for _, name := range sortedKeys(g.LVs) {
			if !selected(sel, vgName, name) {
				continue
			}
			l := g.LVs[name]
			if len(sel) > 0 && strings.Contains(sel[0], "/") && l.Origin != "" {
				if l.Queries++; l.Queries == invalidateAt {
					l.Invalid = true
				}
			}
			rows = append(rows, lvRow(g, vgName, name, l))
		}
	}
	if len(sel) > 0 && strings.Contains(sel[0], "/") && len(rows) == 0 {
		return failf("Failed to find logical volume %q", sel[0])
	}
	return printReport("lv", rows)
}

func selected(sel []string, vgName, lvName string) bool {
	if len(sel) == 0 {
		return true
	}
	for _, s := range sel {
		if s == vgName || s == vgName+"/"+lvName || s == "/dev/"+vgName+"/"+lvName {
			return true
		}
	}
	return false
}

func lvRow(g *vg, vgName, name string, l *lv) map[string]string {
	attr := []byte("-wi-a-----")
	pct := ""
	switch {
	case l.Origin != "":
		attr[0], attr[6] = 's', 's'
		pct = "0.00"
		if l.Thin {
			attr[0], attr[6], attr[7] = 'V', 't', 'z'
		}
		if l.Invalid {
			attr[4], pct = 'I', "100.00"
		}
	case l.Thin:
		attr[0], attr[6], attr[7] = 'V', 't', 'z'
		pct = "1.00"
	}
	for _, o := range g.LVs {
		if o.Origin == name && !l.Thin {
			attr[0] = 'o'
		}
	}
	if mounted(l.Loop) {
		attr[5] = 'o'
	}
	if l.Loop == "" {
		attr[4] = '-' // inactive
	}
	return map[string]string{"lv_name": name, "vg_name": vgName, "lv_path": l.Loop, "lv_size": u(l.Size),
		"lv_attr": string(attr), "origin": l.Origin, "pool_lv": map[bool]string{true: "pool", false: ""}[l.Thin],
		"data_percent": pct, "lv_uuid": l.UUID, "thin_id": thinID(l)}
}

// mounted says the device is mounted somewhere, by device number.
func mounted(dev string) bool {
	var st syscallStat
	if stat(dev, &st) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	want := fmt.Sprintf("%d:%d", st.major(), st.minor())
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == want {
			return true
		}
	}
	return false
}

func thinID(l *lv) string {
	if !l.Thin {
		return ""
	}
	return strconv.Itoa(l.ThinID)
}
