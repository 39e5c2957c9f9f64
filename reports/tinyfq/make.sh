#!/usr/bin/env bash
# Regenerates reports/tinyfq (issue 15): the labelled set of the train-part identities (MobileFaceNet Eq. 1 labels,
# 4 degraded copies per photo), the ablation rows trained from subsets of it, their evaluation on eval-part
# identities (Spearman with Eq. 1 on the labelled eval set, penalties for JPEG-10 / noise-20, the IJB-layout
# benchmark with intervals), and ablation.md. Run from anywhere inside an environment with
# `pip install -e '.[train,dlib]'`; FIQA_SHARED points at the shared folder (default: ../shared beside the
# repository). STEPS picks parts (default: all). Training is bitwise reproducible on one machine and torch build
# (deterministic algorithms, seeded order, no workers); other CPUs or torch versions may round differently.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."   # the repository root: paths are given relative, so cards and results carry no machine path
export FIQA_SHARED=${FIQA_SHARED:-../shared}
export FIQA_BENCH_THREADS=${FIQA_BENCH_THREADS:-1}  # measured on a shared 2-core machine
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}        # torch's threads while training
S=../shared
W=.work/tinyfq            # ignored by git: the labelled sets
A=reports/tinyfq/ablation # weights, cards and evaluations of the rows
EVALSET=${EVALSET:-.work/modern/evalset}   # reports/modern/make.sh 'spearman' builds it (eval part, MobileFaceNet)
BENCH=${BENCH:-.work/celeba-lfw-eval}      # reports/celeba-eval/make.sh prepares it (eval part)
# where the rows' IJB runs go. The seed-1 row (eighth session) ran on the benchmark prepared again on another
# machine (same pairs, a few degraded copies' bytes differ: reports/celeba-eval/reprepared/README.md), so its runs
# are kept apart: IJB_OUT=reports/tinyfq/ijb-reprepared, compared with that benchmark's runs of every method (RERUN)
IJB_OUT=${IJB_OUT:-reports/tinyfq/ijb}
RERUN=${RERUN:-.work/rerun/ijb}
MFN=$S/models/mobilefacenet/mobilefacenet.onnx
FRS=${FRS:-"onnx:$MFN dlib"}              # the benchmark's backbones
# the rows after m4-flip-mse try to teach the JPEG-10 / noise-20 penalty (README.md here); also m4-flip-e17 (not
# run) and m4-flip-w0.7-pair1, m4-flip-pnj3-os4, m4-flip-adam-pnj1-os3-e12-112s2 and
# m4-flip-w0.5-adam-pnj1-os3-e24 (stopped early: README.md)
ROWS=${ROWS:-"m1 m4 m4-none m4-half m4-flip m4-flip-mse m4-flip-pair1 m4-flip-pair3 m4-flip-w0.7 m4-flip-os4
              m4-flip-pair1-os4 m4-flip-adam m4-flip-os3-adam m4-flip-pnj1-adam m4-flip-pnj3-adam m4-flip-pnj3-os3-adam
              m4-flip-adam-pnj1-os3 m4-flip-adam-pnj1-os3-e24 m4-flip-adam-pnj1-os3-112
              m4-flip-adam-pnj1-os3-sjn6-e24 m4-flip-adam-pnj2-os3-e24 m4-flip-adam-pnj2-os3-sjn6-e24
              m4-flip-adam-pnh1-os3-e24 m4-flip-adam-pnh2-os3-sjn6-e24 m4-flip-adam-pnj2-os3-sjn10-e24
              m4-flip-adam-pnj2-os3-sjn6-e36"}
# the bundled recipe again with seed 1 (eighth session, on a labelled set built again on another machine: the
# copies' bytes, and so the data fingerprint, differ a little), in its own table (seeds.md, step `seeds`):
#   ROWS="$SEED_ROWS" IJB_OUT=reports/tinyfq/ijb-reprepared STEPS="train evaluate ijb seeds" bash make.sh
SEED_ROWS=${SEED_ROWS:-m4-flip-adam-pnj2-os3-sjn6-e36-seed1}
# the row bundled as the default tinyfq (README.md here); the rows bundled before it are kept:
# `bundle.py ROW --keep-previous tinyfq-pnj1-e24` (m4-flip-adam-pnj1-os3-e24; earlier tinyfq-m4-flip: m4-flip)
WINNER=${WINNER:-m4-flip-adam-pnj2-os3-sjn6-e36}
STEPS=${STEPS:-"label subsets train evaluate ijb table bundle"}  # + seeds (SEED_ROWS, above)
# the settings shared by every MobileFaceNet row (see README.md here for why 8 epochs, batch 64)
TRAIN="--batch-size 64 --min-images 2 --channels-last --no-progress"
mkdir -p "$W" "$A"

subset_of() { case $1 in m1) echo "--copies 1";; m4-half) echo "--copies 4 --identity-fraction 0.5";;
                          *) echo "--copies 4";; esac; }
# the network: tinyfqnet, or the Table 1 template at width 0.5 / 0.7 for rows named ...-w0.5 / ...-w0.7, or tinyFQnet
# on 112x112 crops (...-112; ...-112s2: with a stride-2 first block)
net_of() { case $1 in *-w0.5*) echo "--net mbv2-t4-w0.5-64";; *-w0.7*) echo "--net mbv2-t4-w0.7-64";;
                      *-112) echo "--net tinyfqnet-112";; *-112s2) echo "--net tinyfqnet-112-s2";;
                      *) echo "--net tinyfqnet";; esac; }
# m4-flip[-w0.5|-w0.7][-adam][-pairW|-pnjW|-pnhW][-osN][-sjnM][-e12|-e24|-e36][-112|-112s2]: m4-flip's options, + Adam (step
# 0.003) instead of SGD, + the pair term of weight W (pnj: on the JPEG and noise copies only; pnh: the same, one-sided:
# --pair-loss hinge), + the JPEG and noise
# copies repeated N times in all after the sampling (train --oversample; sjn: their strong copies M times), + 12, 24
# or 36 epochs (step every 5 / 10 / 15) instead of 8 (every 3), + the 112x112 crops of the same photos and labels (set c4-112)
flip_options() {
    local o="--sampling smooth --hflip" w
    case $1 in *-e36*) o="$o --epochs 36 --lr-step 15";; *-e24*) o="$o --epochs 24 --lr-step 10";; *-e12*) o="$o --epochs 12 --lr-step 5";;
               *) o="$o --epochs 8 --lr-step 3";; esac
    case $1 in *-adam*) o="$o --optimizer adam --lr 0.003";; esac
    case $1 in *-pair*) w=${1##*-pair}; o="$o --pair-weight ${w%%-*}";; esac
    case $1 in *-pnj*) w=${1##*-pnj}; o="$o --pair-weight ${w%%-*} --pair-kinds jpeg,gaussian_noise";; esac
    case $1 in *-pnh*) w=${1##*-pnh}; o="$o --pair-weight ${w%%-*} --pair-kinds jpeg,gaussian_noise --pair-loss hinge";;
    esac
    case $1 in *-os*) w=${1##*-os}; o="$o --oversample jpeg=${w%%-*} --oversample gaussian_noise=${w%%-*}";; esac
    case $1 in *-sjn*) w=${1##*-sjn}; w=${w%%-*}
                       o="$o --oversample jpeg/strong=$w --oversample gaussian_noise/strong=$w";; esac
    echo "$o"
}
options_of() { case $1 in m4-none) echo "--sampling none --epochs 8 --lr-step 3";;
                          m4-flip) echo "--sampling smooth --hflip --epochs 8 --lr-step 3";;
                          m4-flip-mse) echo "--sampling smooth --hflip --loss mse --epochs 8 --lr-step 3";;
                          m4-flip-e17) echo "--sampling smooth --hflip --epochs 17 --lr-step 5";;  # the paper's
                          m4-flip*) flip_options "$1";;
                          *) echo "--sampling smooth --epochs 8 --lr-step 3";; esac; }
# the seed (the validation identities and the order): 0, or N for rows ending in -seedN
seed_of() { case $1 in *-seed*) echo "${1##*-seed}";; *) echo 0;; esac; }
set_of() { case $1 in m1) echo c1;; m4-half) echo c4-half;; *-112|*-112s2) echo c4-112;; *) echo c4;; esac; }

for step in $STEPS; do
case $step in
label)
    # every train-part identity of LFW and celeba-wild with >= 2 photos (Eq. 1's leave-one-out centre needs two;
    # single-photo identities have no centre), each photo + 4 seeded degraded copies (all kinds and strengths)
    [ -f "$W/labels-mfn-c4/meta.json" ] || fiqa-bench label "$S/data/lfw/lfw" "$S/data/celeba-wild/images" \
        --fr "onnx:$MFN" --part train --min-images 2 --pad 0.25 --degraded-copies 4 --seed 0 \
        --out "$W/labels-mfn-c4" --no-progress
    # the same photos, seeds, copies and labels with 112x112 crops (rows ...-112; labels equal bit for bit)
    [ -f "$W/labels-mfn-c4-112/meta.json" ] || fiqa-bench label "$S/data/lfw/lfw" "$S/data/celeba-wild/images" \
        --fr "onnx:$MFN" --part train --min-images 2 --pad 0.25 --degraded-copies 4 --seed 0 --size 112 \
        --out "$W/labels-mfn-c4-112" --no-progress
    ;;
subsets)
    [ -f "$W/c1/meta.json" ] || python reports/tinyfq/subset.py "$W/labels-mfn-c4" "$W/c1" --copies 1
    [ -f "$W/c4-half/meta.json" ] || python reports/tinyfq/subset.py "$W/labels-mfn-c4" "$W/c4-half" --copies 4 \
        --identity-fraction 0.5
    ln -sfn labels-mfn-c4 "$W/c4"
    ln -sfn labels-mfn-c4-112 "$W/c4-112"
    ;;
train)
    for r in $ROWS; do
        [ -f "$A/$r.onnx" ] || fiqa-bench train "$W/$(set_of "$r")" --out "$A/$r.onnx" \
            --checkpoints "$W/ckpt-$r" $(net_of "$r") $TRAIN --seed "$(seed_of "$r")" $(options_of "$r")
    done
    ;;
evaluate)
    # the bundled model of today (dlib labels, 1 copy) kept as methods/weights/tinyfq-v1.onnx: the reference row
    for r in v1 $ROWS; do
        w=$A/$r.onnx; [ "$r" = v1 ] && w=methods/weights/tinyfq-v1.onnx
        [ -f "$A/eval-$r.json" ] || fiqa-bench train-baseline evaluate "$EVALSET" --methods tinyfq --tinyfq "$w" \
            --out "$A/eval-$r.json"
        [ -f "$A/penalties-$r.json" ] || python reports/tinyfq/penalties.py "$EVALSET" --weights "$w" \
            --out "$A/penalties-$r.json"
    done
    ;;
ijb)
    # quality stage only: the embeddings of this benchmark are cached (FIQA_BENCH_CACHE of reports/celeba-eval)
    for fr in $FRS; do
        for r in v1 $ROWS; do
            w=$A/$r.onnx; [ "$r" = v1 ] && w=methods/weights/tinyfq-v1.onnx
            # a result of these weights on this backbone is there already: skip (a run recomputes its bootstrap)
            grep -l "\"weights\": \"$w\"" reports/tinyfq/ijb*/*.json 2>/dev/null \
                | xargs -r grep -l "\"spec\": \"$fr\"" | grep -q . && continue
            fiqa-bench run --protocol "$BENCH" --fr "$fr" --method tinyfq --method-option "weights=$w" \
                --out "$IJB_OUT" --no-progress
        done
    done
    if [ "$IJB_OUT" = reports/tinyfq/ijb ]; then
        fiqa-bench compare reports/celeba-eval/ijb reports/tinyfq/ijb > reports/tinyfq/ijb/compare.md
    else  # RERUN: every method on the same preparation (the commands in reports/celeba-eval/reprepared/README.md)
        fiqa-bench compare "$RERUN" "$IJB_OUT" > "$IJB_OUT/compare.md"
    fi
    ;;
table)
    python reports/tinyfq/table.py --rows "v1 $ROWS" --out reports/tinyfq/ablation.md
    ;;
seeds)
    python reports/tinyfq/table.py --rows "$SEED_ROWS" --out reports/tinyfq/seeds.md \
        --title "tinyFQnet: the bundled recipe with another seed (issue 15)"
    ;;
bundle)
    python reports/tinyfq/bundle.py "$WINNER"
    ;;
*) echo "unknown step $step" >&2; exit 2;;
esac
done
