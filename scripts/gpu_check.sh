#!/usr/bin/env bash
# The GPU check of the StyleGAN2 speed and numerics work (issue 14), as one script:
#
#   bash scripts/gpu_check.sh REFERENCE_PATH [RESULTS_FILE]
#
# REFERENCE_PATH: a checkout of NVlabs/stylegan2-ada-pytorch (d72cc7d or newer; imported at run
# time, none of its code is in this repository). RESULTS_FILE: default $OUT/gpu_check.md when $OUT
# is set (the device tool's output folder), else scripts/benchmarks/results/gpu_check.md.
#
# Steps (each one's status and output tail go to the results file; a failing step does not stop
# the others; the exit status is the number of failed steps):
#   1. environment (GPU, torch, CUDA);
#   2. lab vs plain PyTorch loop (scripts/benchmarks/train_step.py) at 64 and 256 px, StyleGAN2 at
#      the reference's widths (ADA auto batch: 32 at 64 px, 16 at 256 px), in 32, bf16-mixed, 16-mixed;
#   3. lab vs reference (scripts/benchmarks/stylegan_reference.py), per phase and per iteration, at
#      64 and 256 px in the same precisions (the reference's own mixed precision, float16 in its top
#      4 resolutions, for both mixed ones: it has no bfloat16 mode), its CUDA plugins built if the
#      machine can (else its PyTorch fallback, which the table's header says);
#   4. NAN_ITERS (300) StyleGAN2 training iterations at 64 px in 16-mixed and bf16-mixed on
#      procedural images (train.py, data=image_folder): every logged loss must be finite, and
#      G_ema's weights at the end;
#   5. one Inception FID, the lab's (gan_lab.metrics) against torch-fidelity's CLI on the same two
#      folders of PNGs (the procedural reals and samples of step 4's 16-mixed G_ema): equal to
#      1e-3 relative. Needs the FID Inception weights (no download on an offline machine):
#      $INCEPTION_WEIGHTS or torch hub's cache (weights-inception-2015-12-05-6726825d.pth, where
#      torch-fidelity downloads it); without them the step is reported as skipped.
#
# Knobs (environment): STEPS ("1 2 3 4 5": the steps to run, e.g. STEPS="3" to redo one),
# PY (python; default .venv/bin/python, else python3), RESOLUTIONS ("64 256"),
# PRECISIONS ("32 bf16-mixed 16-mixed"), REPEATS (2), TRAIN_ITERS and TRAIN_WARMUP (32 timed
# iterations per train_step measurement, after 8: two R1 steps, eight path-length steps),
# NAN_ITERS (300), FID_IMAGES (1000), INCEPTION_WEIGHTS,
# SMOKE=1 (a CPU run of the plumbing only: narrow networks, 32 px, a few iterations; no GPU claims).
# Sized for about 10 minutes on one H200, most of it in steps 2 and 3 (24 and 6 processes that
# each import torch and Lightning; the reference's plugin build, when nvcc is there, adds one or
# two): STEPS="2" and STEPS="3 4 5" split it over two runs.
set -u -o pipefail

if [ $# -lt 1 ]; then
  echo "usage: bash scripts/gpu_check.sh REFERENCE_PATH [RESULTS_FILE]" >&2
  exit 2
fi
REFERENCE=$(cd "$1" && pwd) || { echo "no such reference checkout: $1" >&2; exit 2; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [ -z "${PY:-}" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
if [ -n "${OUT:-}" ]; then DEFAULT_RESULTS="$OUT/gpu_check.md"; else DEFAULT_RESULTS="$ROOT/scripts/benchmarks/results/gpu_check.md"; fi
RESULTS=${2:-$DEFAULT_RESULTS}
mkdir -p "$(dirname "$RESULTS")"
SMOKE=${SMOKE:-0}
if [ "$SMOKE" = 1 ]; then
  RESOLUTIONS=${RESOLUTIONS:-32}; PRECISIONS=${PRECISIONS:-32}; REPEATS=${REPEATS:-1}
  TRAIN_ITERS=${TRAIN_ITERS:-2}; TRAIN_WARMUP=${TRAIN_WARMUP:-1}; NAN_ITERS=${NAN_ITERS:-4}; FID_IMAGES=${FID_IMAGES:-16}
  LOG_EVERY=1
else
  RESOLUTIONS=${RESOLUTIONS:-64 256}; PRECISIONS=${PRECISIONS:-32 bf16-mixed 16-mixed}; REPEATS=${REPEATS:-2}
  TRAIN_ITERS=${TRAIN_ITERS:-32}; TRAIN_WARMUP=${TRAIN_WARMUP:-8}; NAN_ITERS=${NAN_ITERS:-300}; FID_IMAGES=${FID_IMAGES:-1000}
  LOG_EVERY=10
fi
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")}  # WORK=DIR: reuse one (STEPS split over runs)
mkdir -p "$WORK"
export WANDB_MODE=disabled GAN_LAB_CACHE="$WORK/cache"
FAILED=0
STEPS=${STEPS:-1 2 3 4 5}
want() { case " $STEPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

note() { echo "$*" | tee -a "$RESULTS"; }
# step TITLE CMD...: run CMD, keep its whole log in $WORK, put its status and last lines in RESULTS
step() {
  local title=$1; shift
  local logfile
  logfile="$WORK/$(printf '%s' "$title" | tr -c 'A-Za-z0-9' '_').log"
  note ""
  note "## $title"
  note ""
  note '```'
  note "\$ $*"
  local start=$SECONDS
  "$@" >"$logfile" 2>&1
  local rc=$?
  grep -v -E "Warning|warn\(|^\s*$|it/s\]|Tip:" "$logfile" | tail -n 40 | tee -a "$RESULTS"
  note '```'
  note "status $rc, $((SECONDS - start)) s (full log: $logfile)"
  if [ $rc -ne 0 ]; then FAILED=$((FAILED + 1)); fi
  return 0
}

{
  echo "# GPU check (scripts/gpu_check.sh), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo ""
  echo "lab commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (with local changes)'), reference $REFERENCE ($(git -C "$REFERENCE" rev-parse --short HEAD 2>/dev/null || echo 'not a git checkout')); SMOKE=$SMOKE"
} >"$RESULTS"

# ---------------------------------------------------------------- 1. environment
step "environment" "$PY" - <<'EOF'
import subprocess, torch
print("torch", torch.__version__, "CUDA", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(0), "bf16", torch.cuda.is_bf16_supported())
try:
    print(subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.strip())
except OSError:
    print("no nvidia-smi")
EOF
if [ "$SMOKE" != 1 ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  note ""
  note "No CUDA device here: stopping (SMOKE=1 runs the plumbing on a CPU)."
  exit 1
fi

# ---------------------------------------------------------------- 2. lab vs plain loop
if ! want 2; then :; elif [ "$SMOKE" = 1 ]; then TRAIN_CONFIGS=stylegan32; else
  TRAIN_CONFIGS=$(for r in $RESOLUTIONS; do printf "stylegan%s-ref," "$r"; done); TRAIN_CONFIGS=${TRAIN_CONFIGS%,}
fi
want 2 && for precision in $PRECISIONS; do
  step "lab vs plain loop, $precision" "$PY" scripts/benchmarks/train_step.py --configs "$TRAIN_CONFIGS" \
    --precision "$precision" --repeats "$REPEATS" --iters "$TRAIN_ITERS" --warmup "$TRAIN_WARMUP" --batch 8
done

# ---------------------------------------------------------------- 3. lab vs reference
want 3 && for resolution in $RESOLUTIONS; do
  for precision in $PRECISIONS; do
    if [ "$SMOKE" = 1 ]; then
      extra=(--channel-base 1024 --channel-max 64 --iters 1 --warmup 1)
    else
      batch=$((resolution >= 256 ? 16 : 32))
      extra=(--batch "$batch" --iters 3 --warmup 2 --reference-cuda-ops)
    fi
    step "lab vs reference, ${resolution} px, $precision" "$PY" scripts/benchmarks/stylegan_reference.py \
      --reference "$REFERENCE" --resolution "$resolution" --precision "$precision" --repeats "$REPEATS" \
      "${extra[@]}" --out "$WORK/reference_${resolution}_${precision}.md"
  done
done

# ---------------------------------------------------------------- 4. NaN check
(want 4 || want 5) && "$PY" - "$WORK/reals" "$FID_IMAGES" <<'EOF'
# procedural RGB images (smooth colour fields and discs), 64x64 PNGs: something to train on
import sys
from pathlib import Path
import numpy as np
from PIL import Image
out, n = Path(sys.argv[1]), int(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
yy, xx = np.mgrid[0:64, 0:64] / 63.0
for i in range(max(n, 64)):
    a, b, c = rng.uniform(0, 1, 3), rng.uniform(-1, 1, 3), rng.uniform(-1, 1, 3)
    img = a + 0.5 * b * xx[..., None] + 0.5 * c * yy[..., None]
    for _ in range(rng.integers(1, 4)):
        cx, cy, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.3)
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.uniform(0, 1, 3)
    Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(out / f"{i:05d}.png")
EOF
if [ "$SMOKE" = 1 ]; then
  NAN_MODEL=(model.generator.channel_base=1024 model.generator.channel_max=64 data.resolution=32 data.batch_size=4)
  NAN_PRECISIONS="32"
else
  NAN_MODEL=(data.resolution=64 data.batch_size=32)
  NAN_PRECISIONS="16-mixed bf16-mixed"
fi
want 4 && for precision in $NAN_PRECISIONS; do
  run_dir="$WORK/nan_$precision"
  step "NaN check, $NAN_ITERS StyleGAN2 iterations, $precision" "$PY" train.py model=stylegan data=image_folder \
    "data.root=$WORK/reals" "${NAN_MODEL[@]}" "trainer.max_steps=$NAN_ITERS" "trainer.precision=$precision" \
    "trainer.log_every_n_steps=$LOG_EVERY" metrics=none logger=csv "hydra.run.dir=$run_dir"
  step "NaN check, $precision: logged losses and G_ema finite" "$PY" - "$run_dir" "$NAN_ITERS" <<'EOF'
import csv, math, sys
from pathlib import Path
import torch
run, wanted = Path(sys.argv[1]), int(sys.argv[2])
rows = list(csv.DictReader(open(run / "csv" / "metrics.csv")))
bad, seen = [], 0
for row in rows:
    for key, value in row.items():
        if value in ("", None) or not (key.startswith("loss/") or key.startswith("reg/")):
            continue
        seen += 1
        if not math.isfinite(float(value)):
            bad.append((row.get("step"), key, value))
ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
ema = {k: v for k, v in ckpt["state_dict"].items() if k.startswith("G_ema.")}
nonfinite = [k for k, v in ema.items() if v.is_floating_point() and not torch.isfinite(v).all()]
print(f"{len(rows)} logged rows, {seen} loss/reg values, {len(bad)} non-finite: {bad[:5]}")
print(f"G_ema: {len(ema)} tensors, {len(nonfinite)} non-finite: {nonfinite[:5]}")
steps = int(ckpt.get("global_step", -1))  # the divergence guard ends a run early on NaN/inf
print(f"iterations done {steps} of {wanted}; last step logged: {rows[-1].get('step') if rows else None}")
sys.exit(1 if bad or nonfinite or seen == 0 or steps != wanted else 0)
EOF
done

# ---------------------------------------------------------------- 5. FID: the lab vs torch-fidelity
WEIGHTS=${INCEPTION_WEIGHTS:-$("$PY" -c "from gan_lab.metrics.features import default_inception_path as p; print(p())")}
fid_run="$WORK/nan_$(echo "$NAN_PRECISIONS" | awk '{print $1}')"
if ! want 5; then :; elif [ ! -f "$fid_run/checkpoints/last.ckpt" ]; then
  note ""
  note "## FID: the lab vs torch-fidelity"
  note ""
  note "skipped: no checkpoint of step 4 at $fid_run (STEPS must include 4)"
elif [ ! -f "$WEIGHTS" ]; then
  note ""
  note "## FID: the lab vs torch-fidelity"
  note ""
  note "skipped: no FID Inception weights at $WEIGHTS (set INCEPTION_WEIGHTS=PATH; this machine cannot download them)"
else
  "$PY" - "$fid_run" "$WORK/fakes" "$FID_IMAGES" <<'EOF' >"$WORK/fakes.log" 2>&1
# samples of the checkpoint's G_ema (random noise, no truncation) as PNGs of the reals' size
import sys
from pathlib import Path
import torch
from PIL import Image
from gan_lab.checkpoints import load_model
run, out, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
module, _ = load_model(run / "checkpoints" / "last.ckpt")
G = module.G_ema
device = "cuda" if torch.cuda.is_available() else "cpu"
G = G.to(device).eval()
out.mkdir(parents=True, exist_ok=True)
g = torch.Generator(device=device).manual_seed(0)
with torch.no_grad():
    for start in range(0, n, 50):
        z = torch.randn(min(50, n - start), G.z_dim, device=device, generator=g)
        img = G(z).clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        for i, im in enumerate(img):
            Image.fromarray(im).resize((64, 64), Image.BICUBIC).save(out / f"{start + i:05d}.png")
EOF
  step "FID, torch-fidelity's CLI" "$PY" -m torch_fidelity.fidelity --fid --input1 "$WORK/reals" --input2 "$WORK/fakes" \
    --feature-extractor-weights-path "$WEIGHTS" --no-cache --json
  step "FID, the lab's (gan_lab.metrics) on the same PNGs, and the comparison" "$PY" - "$WORK" "$WEIGHTS" <<'EOF'
import json, re, sys
from pathlib import Path
import numpy as np
import torch
from PIL import Image
from gan_lab.metrics.features import InceptionFeatures
from gan_lab.metrics.quality import frechet_distance
work, weights = Path(sys.argv[1]), sys.argv[2]
device = "cuda" if torch.cuda.is_available() else "cpu"
extractor = InceptionFeatures(weights).to(device)
def features(folder):
    files = sorted(folder.glob("*.png"))
    out = []
    for i in range(0, len(files), 100):
        batch = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files[i : i + 100]])
        x = torch.from_numpy(batch).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(device)
        out.append(extractor(x).double().cpu())
    return torch.cat(out)
lab = frechet_distance(extractor, features(work / "reals").to(device), features(work / "fakes").to(device))
log = (work / "FID__torch_fidelity_s_CLI.log").read_text()
match = re.search(r"\{.*\}", log, re.S)
fidelity = json.loads(match.group(0))["frechet_inception_distance"] if match else float("nan")
rel = abs(lab - fidelity) / max(abs(fidelity), 1.0)  # relative, absolute below 1
print(f"FID lab {lab:.4f}, torch-fidelity {fidelity:.4f}, difference {rel:.2e} (relative, absolute below 1)")
sys.exit(0 if rel < 1e-3 else 1)
EOF
fi

note ""
note "## Summary"
note ""
note "$FAILED failed step(s); per-run logs in $WORK"
for f in "$WORK"/reference_*.md; do
  [ -f "$f" ] || continue
  note ""
  note "### $(basename "$f" .md)"
  note ""
  cat "$f" >>"$RESULTS"
done
exit "$FAILED"
