#!/usr/bin/env bash
# Run every benchmark at its smoke size (or pass --full) and collect the JSON figures in
# benchmarks/results/<date>.jsonl.  Machines here are shared and noisy: compare ratios
# measured in one run, and record the load average printed beside each figure.
set -uo pipefail
cd "$(dirname "$0")/.."
export QT_QPA_PLATFORM=offscreen
mkdir -p benchmarks/results
out="benchmarks/results/$(date -u +%Y%m%dT%H%M%SZ).jsonl"
for script in bench_nifti_load bench_dicom_load bench_messy_import bench_library \
              bench_viewer bench_editing bench_edit_gui bench_inference bench_gui_inference; do
    [ -f "benchmarks/$script.py" ] || continue
    echo "== $script" >&2
    start=$(date +%s)
    if python "benchmarks/$script.py" "$@" >"/tmp/$script.json" 2>"/tmp/$script.err"; then
        python - "$script" "$(cut -d' ' -f1 /proc/loadavg)" "$(( $(date +%s) - start ))" "/tmp/$script.json" >>"$out" <<'PY'
import json, sys
text = open(sys.argv[4]).read()
doc = json.loads(text[text.index("{"):])
print(json.dumps({"benchmark": sys.argv[1], "load1": float(sys.argv[2]), "wall_s": int(sys.argv[3]), "result": doc}))
PY
    else
        echo "{\"benchmark\": \"$script\", \"failed\": true}" >>"$out"
        tail -5 "/tmp/$script.err" >&2
    fi
done
echo "$out"
