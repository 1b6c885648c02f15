package lvm

import "fmt"

// lvsJSON is lvs's JSON report of the given rows, as lvm2 2.03 prints it.
func lvsJSON(rows ...string) string {
	out := `{"report": [{"lv": [`
	for i, r := range rows {
		if i > 0 {
			out += ","
		}
		out += r
	}
	return out + `]}]}`
}

func lvRow(vg, name, attr, origin string, size uint64, dataPercent string) string {
	return fmt.Sprintf(`{"lv_name":%q, "vg_name":%q, "lv_path":"/dev/%s/%s", "lv_size":"%d", "lv_attr":%q, "origin":%q, "pool_lv":"", "data_percent":%q}`,
		name, vg, vg, name, size, attr, origin, dataPercent)
}

func vgsJSON(name string, size, free, extent uint64) string {
	return fmt.Sprintf(`{"report": [{"vg": [{"vg_name":%q, "vg_size":"%d", "vg_free":"%d", "vg_extent_size":"%d", "vg_free_count":"%d"}]}]}`,
		name, size, free, extent, free/extent)
}
