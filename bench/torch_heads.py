"""The seed's way of `heads ablate` in plain PyTorch, for bench/bench_heads.cpp: one prompt at a time,
a forward hook zeroing head 0:0's z (the attention output before c_proj), no KV cache (each step runs
the whole sequence), greedy. Reads the prompts from bench_heads' JSON, checks the generated ids are the
same, and prints one JSON object. With SAMPLE > 1 only every SAMPLE-th prompt is run and the time for
all prompts is that per-prompt time times their count (marked "_est", as bench_patch's naive loop).

    torch_heads.py MODEL_DIR THREADS HEADS_JSON [SAMPLE=1]"""
import json
import sys
import time

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from torch_gpt2 import DEVICE, forward, load  # noqa: E402


def main():
    model, threads, mech_json = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sample = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    if threads > 0:
        torch.set_num_threads(threads)
    m = json.load(open(mech_json))
    cfg = json.load(open(model + "/config.json"))
    w = load(model + "/model.safetensors")
    ablate = [(0, 0)]
    gen = []
    t = time.perf_counter()
    with torch.no_grad():
        for prompt in m["prompt_ids"][::sample]:
            ids = torch.tensor([prompt])
            new = []
            for _ in range(m["new_tokens"]):
                nxt = int(forward(w, cfg, ids, ablate, last_only=True)[0].argmax())
                new.append(nxt)
                ids = torch.cat([ids, torch.tensor([[nxt]])], 1)
            gen.append(new)
    s = time.perf_counter() - t
    same = sum(a == b for a, b in zip(gen, m["ablated_ids"][::sample]))
    out = {"threads": torch.get_num_threads(), "device": DEVICE, "prompts": len(gen), "same_ids": same, "sample": sample}
    out["ablate_s_est" if sample > 1 else "ablate_s"] = s / len(gen) * len(m["prompt_ids"])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
