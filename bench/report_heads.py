"""Prints the heads benchmark (bench_heads vs torch_heads.py, same run)."""
import json
import sys

out = sys.argv[1]
m = json.load(open(out + "/heads.json"))
t = json.load(open(out + "/torch_heads.json"))
print(f"heads ablate, GPT-2 small shape, {m['prompts']} prompts x {m['new_tokens']} new tokens, head {m['head']} zeroed, "
      f"{m['threads']} threads: mechscope (batches of {m['batch']}, KV cache) {m['ablate_s']:.2f} s")
for key, what in (("cached", "one prompt at a time with a KV cache, as TransformerLens generate"),
                  ("full", "one prompt at a time, no cache")):
    ts = t.get(key + "_s", t.get(key + "_s_est"))
    est = f" (estimated from every {t['sample']}th prompt)" if key + "_s_est" in t else ""
    print(f"  PyTorch the seed's way, {what}: {ts:.2f} s{est}: mechscope is {ts / m['ablate_s']:.1f}x; "
          f"same generated ids for {t[key + '_same_ids']}/{t[key + '_prompts']} prompts")
print(f"heads screen --score causal: {m['causal_cells']} cells (144 heads x {m['prompts']} pairs) in {m['causal_s']:.2f} s "
      f"= {m['causal_cells_per_s']:.0f} cells/s")
