#!/usr/bin/env bash
# Regenerates the tables in this folder: every method x {dlib, shared MobileFaceNet} x {IJB layout, YTF layout}
# on a benchmark prepared from the eval-part identities of ../shared/data/celeba-wild (identities never used to
# train tinyfq, svm, rqs or faceqnet; fiqa_bench.splits). Run from anywhere inside an environment with
# `pip install -e '.[dlib]'`; FIQA_SHARED points at the shared folder (default: ../shared beside the repository).
# Results files are written atomically and caches make a rerun resume where it stopped.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."   # the repository root: paths given as options are recorded as written, so keep them relative
export FIQA_SHARED=${FIQA_SHARED:-$(cd "$here/../../.." && pwd)/shared}
S=$FIQA_SHARED
BENCH=${BENCH:-${TMPDIR:-/tmp}/fiqa-bench-celeba-eval}
MFN=$S/models/mobilefacenet/mobilefacenet.onnx
METHODS=${METHODS:-"random blur pose jpeg combination svm rqs faceqnet tinyfq"}
FRS=${FRS:-"dlib onnx:$MFN"}
LAYOUTS=${LAYOUTS:-"ijb ytf"}

# 2251 images (711 degraded) in 212 templates of 106 identities; 106 genuine + 22,260 impostor template pairs;
# the YTF layout has the same images as 212 "videos" and 10 identity-disjoint folds of 212 video pairs.
fiqa-bench prepare "$S/data/celeba-wild/images" "$BENCH" --name celeba-eval --seed 0 --degrade 0.3 \
    --layout both --part eval --no-progress > /dev/null

for layout in $LAYOUTS; do
    proto=$BENCH; [ "$layout" = ytf ] && proto=$BENCH/ytf
    for fr in $FRS; do
        # Reference: every image of the template pooled (no quality method).
        fiqa-bench run --protocol "$proto" --fr "$fr" --selection all --out "$here/$layout" --no-progress
        for m in $METHODS; do
            fiqa-bench run --protocol "$proto" --fr "$fr" --method "$m" --out "$here/$layout" --no-progress
        done
    done
    fiqa-bench report "$here/$layout"
done

# Table 2: parameters, multiply-adds and ms per image of every method on this CPU (timings vary with the machine
# and its load; parameter and multiply-add counts are exact).
if [ -z "${SKIP_COSTS:-}" ]; then
    python benchmarks/bench_costs.py --out "$here/costs"
    fiqa-bench report "$here/costs"
fi

# Table 7: tinyFQnet trained with the "random" strategy (the natural label distribution; weights and card in
# reports/tinyfq/sampling/) against the bundled "smooth" model, same data, seed and settings.
if [ -z "${SKIP_TABLE7:-}" ]; then
    for layout in $LAYOUTS; do
        proto=$BENCH; [ "$layout" = ytf ] && proto=$BENCH/ytf
        for fr in $FRS; do
            fiqa-bench run --protocol "$proto" --fr "$fr" --method tinyfq --out "$here/table7-$layout" --no-progress
            fiqa-bench run --protocol "$proto" --fr "$fr" --method tinyfq --out "$here/table7-$layout" --no-progress \
                --method-option weights=reports/tinyfq/sampling/tinyfq-random.onnx
        done
        fiqa-bench report "$here/table7-$layout"
    done
fi
