"""The seed's way of `heads ablate` in plain PyTorch, for bench/bench_heads.cpp: one prompt at a time,
a forward hook zeroing head 0:0's z (the attention output before c_proj), greedy, timed two ways:
  cached: as TransformerLens's generate does by default (use_past_kv_cache=True): the prompt once,
          then one token per step against the kept keys and values;
  full:   no cache, each step runs the whole sequence (what a hand-written loop around model(ids)
          does). With SAMPLE > 1 only every SAMPLE-th prompt is run this way and the time for all
          prompts is that per-prompt time times their count (marked "_est", as bench_patch's naive loop).
Reads the prompts from bench_heads' JSON, checks the generated ids are the same as mechscope's, and
prints one JSON object.

    torch_heads.py MODEL_DIR THREADS HEADS_JSON [SAMPLE=1]"""
import json
import sys
import time

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from torch_gpt2 import DEVICE, forward, load  # noqa: E402


def generate(w, cfg, prompt, new_tokens, ablate, cached):
    ids = torch.tensor([prompt])
    cache = [] if cached else None
    step = ids
    new = []
    for _ in range(new_tokens):
        nxt = int(forward(w, cfg, step if cached else ids, ablate, last_only=True, cache=cache)[0].argmax())
        new.append(nxt)
        ids = torch.cat([ids, torch.tensor([[nxt]])], 1)
        step = torch.tensor([[nxt]])
    return new


def main():
    model, threads, mech_json = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sample = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    if threads > 0:
        torch.set_num_threads(threads)
    m = json.load(open(mech_json))
    cfg = json.load(open(model + "/config.json"))
    w = load(model + "/model.safetensors")
    ablate = [(0, 0)]
    out = {"threads": torch.get_num_threads(), "device": DEVICE, "sample": sample}
    with torch.no_grad():
        generate(w, cfg, m["prompt_ids"][0], 2, ablate, True)  # warm-up
        for cached, prompts, want, key in ((True, m["prompt_ids"], m["ablated_ids"], "cached"),
                                           (False, m["prompt_ids"][::sample], m["ablated_ids"][::sample], "full")):
            t = time.perf_counter()
            gen = [generate(w, cfg, p, m["new_tokens"], ablate, cached) for p in prompts]
            s = time.perf_counter() - t
            out[key + "_prompts"] = len(gen)
            out[key + "_same_ids"] = sum(a == b for a, b in zip(gen, want))
            est = "_est" if len(gen) < len(m["prompt_ids"]) else ""
            out[key + "_s" + est] = s / len(gen) * len(m["prompt_ids"])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
