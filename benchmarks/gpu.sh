#!/usr/bin/env bash
# The GPU run of issues #10 and #11, one script: `bash benchmarks/gpu.sh`. Its steps' timeouts add up to
# 8.0 minutes (not yet measured on a GPU: the timeouts are estimates).
#
# 1. installs the wheels carried in .whl/ (if any) into /tmp/site;
# 2. builds pointnet2_ops from a carried copy in .anchors/pointnet2_ops_lib (if any), in /tmp;
# 3. runs `pytest tests/kernels` and the ops tests that take a CUDA device (Triton kernels compiled);
# 4. runs `pointsd bench ops --device cuda --json` and the training benches: `finetune` (batch 32,
#    50 timed steps, both modes) and `pretrain` once per stage (batch 64, 50 timed steps in both
#    modes, then 51 steps (50 timed intervals) of the real fast loop);
# 5. writes benchmarks/results/gpu-<date>.json (python -m pointsd.results.gpu) and a log beside it,
#    and copies both to $OUT when that is set (the device tool brings $OUT back).
# Every step has a timeout and a failing step does not stop the others; see benchmarks/RESULTS.md.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STAMP="$(date -u +%Y-%m-%d)"
RES="$ROOT/benchmarks/results"
WORK="$(mktemp -d /tmp/pointsd-gpu.XXXX)"
LOG="$RES/gpu-$STAMP.log"
mkdir -p "$RES"
: >"$LOG"
export PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
say() { echo "== $(date -u +%T) $*" | tee -a "$LOG"; }
PY=python3

if compgen -G ".whl/*.whl" >/dev/null; then
    say "installing carried wheels: $(ls .whl | tr '\n' ' ')"
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl >>"$LOG" 2>&1 || say "wheel install FAILED (continuing)"
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi

# the package as the repo lays it out: pointsd/ and kernels/pointsd_kernels/ (kernels/ itself is no
# package, so the root on the path does not shadow Hugging Face's `kernels`)
export PYTHONPATH="$ROOT/kernels:$ROOT${PYTHONPATH:+:$PYTHONPATH}"

if [ -d .anchors/pointnet2_ops_lib ]; then
    say "building pointnet2_ops (sm_90) in $WORK/pn2"
    cp -r .anchors/pointnet2_ops_lib "$WORK/pn2"
    sed -i 's/"3.7+PTX;5.0;6.0;6.1;6.2;7.0;7.5"/"9.0"/' "$WORK/pn2/setup.py" "$WORK/pn2/pointnet2_ops/pointnet2_utils.py"
    if (cd "$WORK/pn2" && MAX_JOBS=12 timeout 70 $PY setup.py build_ext --inplace) >>"$LOG" 2>&1; then
        export PYTHONPATH="$WORK/pn2:$PYTHONPATH"
        say "pointnet2_ops built"
    else
        say "pointnet2_ops build FAILED (its rows will be missing)"
    fi
else
    say "no .anchors/pointnet2_ops_lib carried: no pointnet2_ops rows"
fi

say "nvidia-smi: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
say "versions: $($PY -c 'import torch, triton; print(torch.__version__, torch.version.cuda, triton.__version__)' 2>&1)"

POINTSD=("$PY" -c 'import sys; from pointsd.cli import main; sys.exit(main(sys.argv[1:]))')

TESTS_RC=0
: >"$WORK/pytest.log"
for spec in "80 tests/kernels" "30 tests/ops/test_float_order.py tests/ops/test_dispatch.py"; do  # kernels first: they are what needs the GPU
    say "pytest ${spec#* } (kernels compiled), timeout ${spec%% *} s"
    # shellcheck disable=SC2086  # the spec's paths are several words
    timeout "${spec%% *}" $PY -m pytest -q -p no:cacheprovider ${spec#* } >"$WORK/part.log" 2>&1
    rc=$?
    [ "$TESTS_RC" -eq 0 ] && TESTS_RC=$rc
    cat "$WORK/part.log" >>"$WORK/pytest.log"
    say "pytest ${spec#* } rc $rc: $(tail -n 1 "$WORK/part.log")"
done
cat "$WORK/pytest.log" >>"$LOG"

say "pointsd bench ops --device cuda"
timeout 60 "${POINTSD[@]}" bench ops --device cuda --json >"$WORK/ops.json" 2>>"$LOG"
say "bench ops rc $? (1 = a project backend was not exact)"

BENCHES=()
# each bench rewrites its --out file after every row: a timeout keeps the rows measured so far;
# the two pre-training invocations share --work (the loop's data is made once, stage 2 trains from
# the stage-1 loop's output)
for spec in "70 finetune finetune" \
            "85 pretrain1 pretrain --stages 1 --loop-steps 51 --profile-steps 3 --work $WORK/bench" \
            "85 pretrain2 pretrain --stages 2 --loop-steps 51 --profile-steps 3 --work $WORK/bench"; do
    read -r seconds name flags <<<"$spec"
    say "pointsd bench $flags --device cuda (timeout $seconds s)"
    # shellcheck disable=SC2086  # $flags is a list of flags
    timeout "$seconds" "${POINTSD[@]}" bench $flags --device cuda --out "$WORK/$name.json" >/dev/null 2>>"$LOG"
    say "bench $name rc $?"
    BENCHES+=(--bench "$name=$WORK/$name.json")
done

$PY -m pointsd.results.gpu --ops "$WORK/ops.json" "${BENCHES[@]}" --tests-rc "$TESTS_RC" \
    --tests-log "$WORK/pytest.log" --out "$RES/gpu-$STAMP.json" 2>&1 | tee -a "$LOG"
if [ -n "${OUT:-}" ]; then cp "$RES/gpu-$STAMP.json" "$LOG" "$OUT"/; fi
