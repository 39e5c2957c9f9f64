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
STEPS=${STEPS:-"blocks spearman lfw ijb costs"}  # lfw-faceqan is extra (hours of CPU): STEPS=lfw-faceqan
# METHODS: only these methods' runs in the lfw and ijb steps (e.g. METHODS=random STEPS="lfw ijb" reruns random,
# the ijb reference run and the reports); default every method
METHODS=${METHODS:-}
want() { [ -z "$METHODS" ] || [[ " $METHODS " == *" $1 "* ]]; }
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
    # The suite's own command, on the set's labelling backbone (the ONNX file): norm runs (raw features); serfiq
    # is skipped there with the capability error; the paper's learned and perceptual methods for comparison.
    fiqa-bench train-baseline evaluate "$W/evalset" --methods norm,serfiq,random,blur,svm,rqs,faceqnet,tinyfq \
        --out "$here/spearman-eval-cli.json"
    # The training-free methods on torch-mobilefacenet (same weights), on the set's stored crops:
    python reports/modern/spearman_eval.py "$W/evalset" --methods norm,serfiq --out "$here/spearman-eval.json"
    python reports/modern/spearman_eval.py "$W/evalset" --methods grafiqs --out "$here/spearman-eval-grafiqs.json"
    # faceqan costs ~100 forward passes per face: every method again on the same 20 photos (80 rows)
    python reports/modern/spearman_eval.py "$W/evalset" --methods norm,serfiq,grafiqs,faceqan --photos 20 \
        --out "$here/spearman-eval-20photos.json"
    ;;
lfw)
    # 7,701 images, 6,000 pairs (10 folds); accuracy, EDC and pAUC
    for m in random blur norm serfiq grafiqs; do
        want "$m" || continue
        fiqa-bench run --method "$m" --fr torch-mobilefacenet --protocol lfw --data "$S/data/lfw" \
            --out "$here/lfw" --no-progress
    done
    ! want norm || fiqa-bench run --method norm --fr "onnx:$MFN" --protocol lfw --data "$S/data/lfw" \
        --out "$here/lfw" --no-progress
    fiqa-bench report "$here/lfw"
    fiqa-bench compare "$here/lfw" > "$here/lfw/compare.md"
    ;;
lfw-faceqan)
    # faceqan on LFW View 2: about 1.5-1.7 CPU-seconds per face with one thread on an idle core of the 2-core
    # development machine, so 3.2-3.6 hours for 7,701 images (far more on a loaded machine); resumes from the cache
    fiqa-bench run --method faceqan --fr torch-mobilefacenet --protocol lfw --data "$S/data/lfw" --out "$here/lfw" \
        --no-progress
    fiqa-bench report "$here/lfw"
    fiqa-bench compare "$here/lfw" > "$here/lfw/compare.md"
    ;;
ijb)
    # 2,251 images (711 degraded) in 212 templates of 106 eval-part identities; 106 genuine + 22,260 impostor pairs
    fiqa-bench prepare "$S/data/celeba-wild/images" "$BENCH" --name celeba-eval --seed 0 --degrade 0.3 \
        --layout both --part eval --no-progress > /dev/null
    fiqa-bench run --protocol "$BENCH" --fr torch-mobilefacenet --selection all --out "$here/ijb" --no-progress
    # faceqan: about 1 hour of CPU for the 2,251 images on an idle core (1.5-1.7 s per face), several on a loaded one
    for m in random norm serfiq grafiqs faceqan; do
        want "$m" || continue
        fiqa-bench run --protocol "$BENCH" --fr torch-mobilefacenet --method "$m" --out "$here/ijb" --no-progress
    done
    # norm on the ONNX file, and the paper's methods on the same benchmark for comparison (the ONNX file gives the
    # same embeddings; svm's bundled model is keyed to it)
    for m in norm blur svm rqs tinyfq; do
        want "$m" || continue
        fiqa-bench run --protocol "$BENCH" --fr "onnx:$MFN" --method "$m" --out "$here/ijb" --no-progress
    done
    fiqa-bench report "$here/ijb"
    fiqa-bench compare "$here/ijb" > "$here/ijb/compare.md"
    ;;
costs)
    python reports/modern/costs.py --out "$here/costs" --n 16 --repeats 2 --faceqan-n 2
    ;;
esac
done
