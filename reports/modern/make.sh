#!/usr/bin/env bash
# Regenerates reports/modern: the training-free methods (norm, serfiq, grafiqs, faceqan) on the shared MobileFaceNet
# as torch-mobilefacenet (norm also on the ONNX file): Spearman with Eq. 1 on the eval-part labelled set, EDC/pAUC
# and accuracy on LFW View 2, TPR@FPR and pAUC on the IJB-layout benchmark of eval-part identities, and costs.
# Run from anywhere inside an environment with `pip install -e '.[train]'` (torch); FIQA_SHARED points at the
# shared folder (default: ../shared beside the repository). STEPS picks parts (default: all of them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."   # the repository root: paths are given relative, so results carry no machine path
export FIQA_SHARED=${FIQA_SHARED:-../shared}
export FIQA_BENCH_THREADS=${FIQA_BENCH_THREADS:-1}  # the measurements here were made on a shared 2-core machine
S=../shared
W=.work/modern     # ignored by git
BENCH=${BENCH:-.work/celeba-eval}  # the same benchmark reports/celeba-eval uses (same command, byte-identical)
MFN=$S/models/mobilefacenet/mobilefacenet.onnx
STEPS=${STEPS:-"blocks spearman lfw ijb costs"}
mkdir -p "$W"

for step in $STEPS; do
case $step in
blocks)
    # GraFIQs' block, chosen on TRAIN-part identities (264 photos of 89 identities with their ladders; 400 rows)
    [ -f "$W/trainset/meta.json" ] || fiqa-bench train-baseline data "$W/trainset" --fr "onnx:$MFN" \
        --source "$S/data/celeba-wild/images:per_identity=3" --part train --seed 0 --no-progress
    python reports/modern/choose_grafiqs_block.py "$W/trainset" --rows 400 --out "$here/grafiqs-blocks-train.json"
    ;;
spearman)
    # 4,072 rows: 1,019 eval-part photos of 111 identities, each with a light/medium/strong degradation ladder
    [ -f "$W/evalset/meta.json" ] || fiqa-bench train-baseline data "$W/evalset" --fr "onnx:$MFN" \
        --source "$S/data/celeba-wild/images:per_identity=10" --part eval --seed 0 --no-progress
    # norm through the suite's own command (the set's ONNX backbone offers raw features; serfiq, grafiqs and
    # faceqan are skipped there with the capability error), and every method on torch-mobilefacenet:
    fiqa-bench train-baseline evaluate "$W/evalset" --methods norm,serfiq,blur --out "$here/spearman-eval-cli.json"
    python reports/modern/spearman_eval.py "$W/evalset" --methods norm,serfiq,grafiqs --out "$here/spearman-eval.json"
    # faceqan costs ~150 forward passes per face: every method again on the same 60 photos (240 rows)
    python reports/modern/spearman_eval.py "$W/evalset" --methods norm,serfiq,grafiqs,faceqan --photos 60 \
        --out "$here/spearman-eval-60photos.json"
    ;;
lfw)
    # 7,701 images, 6,000 pairs (10 folds); accuracy, EDC and pAUC
    for m in norm serfiq grafiqs; do
        fiqa-bench run --method "$m" --fr torch-mobilefacenet --protocol lfw --data "$S/data/lfw" \
            --out "$here/lfw" --no-progress
    done
    fiqa-bench run --method norm --fr "onnx:$MFN" --protocol lfw --data "$S/data/lfw" --out "$here/lfw" --no-progress
    fiqa-bench report "$here/lfw"
    ;;
ijb)
    # 2,251 images (711 degraded) in 212 templates of 106 eval-part identities; 106 genuine + 22,260 impostor pairs
    fiqa-bench prepare "$S/data/celeba-wild/images" "$BENCH" --name celeba-eval --seed 0 --degrade 0.3 \
        --layout both --part eval --no-progress > /dev/null
    fiqa-bench run --protocol "$BENCH" --fr torch-mobilefacenet --selection all --out "$here/ijb" --no-progress
    for m in random norm serfiq grafiqs; do
        fiqa-bench run --protocol "$BENCH" --fr torch-mobilefacenet --method "$m" --out "$here/ijb" --no-progress
    done
    fiqa-bench run --protocol "$BENCH" --fr "onnx:$MFN" --method norm --out "$here/ijb" --no-progress
    fiqa-bench report "$here/ijb"
    ;;
costs)
    python reports/modern/costs.py --out "$here/costs"
    ;;
esac
done
