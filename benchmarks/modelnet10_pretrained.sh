#!/usr/bin/env bash
# The from-pre-trained ModelNet10 figure of benchmarks/RESULTS.md, end to end on a CPU:
# small synthetic ShapeNet-55 + renders + tiny random-init SD → stage 1 → stage 2 → fine-tune on the
# real ModelNet10 with exactly the from-scratch recipe of the README (same widths, same schedule).
# Usage: bash benchmarks/modelnet10_pretrained.sh [OUT_DIR] [MODELNET10_DIR]
set -euo pipefail
OUT=${1:-runs/modelnet10_pretrained_cpu}
MN10=${2:-../shared/data/modelnet10}
BACKBONE=(--trans-dim 192 --depth 4 --num-heads 3 --npoints 1024 --num-group 64 --group-size 16
  --encoder-dims 256 --patch-width 128 --drop-path-rate 0.1)
mkdir -p "$OUT"

[ -d "$OUT/data" ] || pointsd data synth --out "$OUT/data" --size small --seed 0
[ -d "$OUT/renders" ] || pointsd render --points "$OUT/data/ShapeNet55-34/shapenet_pc" \
  --split-list "$OUT/data/ShapeNet55-34/ShapeNet-55/train.txt" --out "$OUT/renders" --views 1 --size 64 --seed 0
[ -d "$OUT/sd-tiny" ] || pointsd sd tiny --out "$OUT/sd-tiny" --seed 0

PRETRAIN=(--data-root "$OUT/data" --renders "$OUT/renders" --sd "$OUT/sd-tiny" "${BACKBONE[@]}"
  --image-size 64 --batch-size 16 --lr 5e-4 --weight-decay 0.01 --grad-clip 1.0 --warmup-epochs 1
  --mix-prob 0.5 --mix-resize antialias --point-subset whole --probe-every 500 --probe-points 1024 --max-steps-per-epoch 0 --device cpu --speed fast
  --probe-policy honest --seed 0 --profile cpu-small --data-profile synthetic --no-progress)
pointsd pretrain --stage 1 --out "$OUT/stage1" --epochs 4 "${PRETRAIN[@]}"
pointsd pretrain --stage 2 --stage1 "$OUT/stage1" --out "$OUT/stage2" --epochs 2 --stage2-grouping shared "${PRETRAIN[@]}"

pointsd finetune --task modelnet10 --data-root "$MN10" --out "$OUT/finetune" \
  --init "$OUT/stage2/ckpt-stage2.pt" --protocol honest --val-fraction 0.1 --seed 0 --device cpu --speed fast \
  --mixed-precision bf16 --epochs 16 --warmup-epochs 2 --batch-size 32 --optimizer adamw --lr 1e-3 \
  --weight-decay 0.05 --grad-clip 10 --augment scale_translate --votes 0 "${BACKBONE[@]}" \
  --data-profile real --profile cpu-small --no-progress
