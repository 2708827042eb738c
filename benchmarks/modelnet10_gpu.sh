#!/usr/bin/env bash
# Issue #11's ModelNet10 figure on one GPU: the SPEC ViT-S (384 x 12, 6 heads, 64 groups x 32) trained
# from scratch on the real ModelNet10, honest protocol (a stratified 10 % validation split picks the
# epoch), `--speed fast` (bf16, compiled, fused AdamW). Its own run, apart from benchmarks/gpu.sh:
# the 30-epoch recipe took 146 s on an H100 (fp32), so this one should take about 5-10 minutes.
# Usage: bash benchmarks/modelnet10_gpu.sh [OUT_DIR] [MODELNET10_DIR]   (writes OUT_DIR/metrics.json)
set -euo pipefail
OUT=${1:-runs/modelnet10_gpu}
MN10=${2:-../shared/data/modelnet10}
POINTSD=(pointsd)
command -v pointsd >/dev/null || POINTSD=(python3 -c 'import sys; from pointsd.cli import main; sys.exit(main(sys.argv[1:]))')

"${POINTSD[@]}" finetune --task modelnet10 --data-root "$MN10" --out "$OUT" --init scratch \
  --protocol honest --val-fraction 0.1 --seed 0 --device cuda --speed fast \
  --epochs 120 --warmup-epochs 10 --batch-size 32 --optimizer adamw --lr 5e-4 --weight-decay 0.05 \
  --grad-clip 10 --label-smoothing 0.1 --augment scale_translate --votes 10 \
  --trans-dim 384 --depth 12 --num-heads 6 --npoints 1024 --num-group 64 --group-size 32 \
  --encoder-dims 256 --patch-width 128 --drop-path-rate 0.1 \
  --data-profile real --profile gpu-vits --no-progress
python3 - "$OUT/metrics.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print(f"ModelNet10 ViT-S: test {m['test']['overall_acc']:.2f} % at the selected epoch {m['selected_epoch']} "
      f"(val {m['val_acc']:.2f} %), last epoch {m['last_epoch_acc']:.2f} %, voting {m['test'].get('voting_acc')}, "
      f"{m['train_seconds_this_invocation']:.0f} s, speed {m['meta']['speed']['speed']}")
PY
