#!/usr/bin/env bash
# GPU smoke test, one call on a machine with a CUDA GPU:
#   1. every registered trainer (vtonpipe.training.task.registered_tasks) for a few steps on CUDA
#      with AMP, printing its samples/s (from the run's log.csv);
#   2. the annotators' torch backends that `vtonpipe doctor` finds usable, on a scratch copy of the
#      build with --device cuda, printing images/s.
#
#   bash benchmarks/gpu_smoke.sh [BUILD]      # BUILD defaults to data/sample (make demo)
#
# Environment: STEPS (default 30), BATCH (default 8), SIZE (HEIGHTxWIDTH, default 256x192).
set -euo pipefail

BUILD=${1:-data/sample}
STEPS=${STEPS:-30}
BATCH=${BATCH:-8}
SIZE=${SIZE:-256x192}
HEIGHT=${SIZE%x*}
WIDTH=${SIZE#*x}

if [ ! -d "$BUILD/packed/train" ]; then
    echo "no $BUILD/packed/train: build the sample first (make demo) or pass a build directory" >&2
    exit 1
fi
python - <<'EOF'
import sys, torch
if not torch.cuda.is_available():
    sys.exit(f"torch {torch.__version__} sees no CUDA device: this smoke test needs a GPU")
print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
EOF

SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

echo
echo "== trainers: $STEPS steps, batch $BATCH, ${HEIGHT}x${WIDTH}, CUDA + AMP"
printf '%-28s %12s %s\n' "kind/model" "samples/s" "status"
python -c "from vtonpipe.training.task import registered_tasks; print('\n'.join(f'{k} {m}' for k, m in registered_tasks()))" |
while read -r kind model; do
    [ -n "$kind" ] || continue
    out="$SCRATCH/runs/$kind-$model"
    if vtonpipe train "$kind" --model "$model" --build "$BUILD" --out "$out" --device cuda --steps "$STEPS" \
        --set batch_size="$BATCH" --set height="$HEIGHT" --set width="$WIDTH" --set amp=true \
        --set log_every=10 --set checkpoint_every=100000 --set grid_every=0 >"$out.log" 2>&1; then
        rate=$(python -c "import csv,sys; rows=list(csv.DictReader(open(sys.argv[1]))); print(rows[-1]['samples_per_s'])" "$out/log.csv")
        printf '%-28s %12s %s\n' "$kind/$model" "$rate" "ok"
    else
        printf '%-28s %12s %s\n' "$kind/$model" "-" "FAILED (see below)"
        tail -n 20 "$out.log"
    fi
done

echo
echo "== annotators' torch backends on CUDA (usable ones only, see vtonpipe doctor)"
printf '%-28s %12s %s\n' "annotator/backend" "images/s" "status"
cp -r "$BUILD" "$SCRATCH/build"
DATASET=$(basename "$BUILD")
for pair in body:anny-fit densepose:rcnn parsing:schp keypoints:openpose-torch; do
    name=${pair%%:*}
    backend=${pair#*:}
    usable=$(vtonpipe doctor --json | python -c "import json,sys; d=json.load(sys.stdin); print(any(r['annotator']=='$name' and r['backend']=='$backend' and r['usable'] for r in d['backends']))")
    if [ "$usable" != "True" ]; then
        printf '%-28s %12s %s\n' "$name/$backend" "-" "not usable here (weights?)"
        continue
    fi
    start=$(date +%s.%N)
    if vtonpipe annotate "$name" --dataset "$DATASET" --build "$SCRATCH/build" --backend "$backend" --device cuda --recompute >"$SCRATCH/$name.log" 2>&1; then
        end=$(date +%s.%N)
        rows=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['rows'])" "$SCRATCH/build/annotations/$name/manifest.json")
        printf '%-28s %12.1f %s\n' "$name/$backend" "$(python -c "print($rows / ($end - $start))")" "ok ($rows images, model load included)"
    else
        printf '%-28s %12s %s\n' "$name/$backend" "-" "FAILED"
        tail -n 20 "$SCRATCH/$name.log"
    fi
done
