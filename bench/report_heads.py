"""Prints the heads benchmark (bench_heads vs torch_heads.py, same run)."""
import json
import sys

out = sys.argv[1]
m = json.load(open(out + "/heads.json"))
t = json.load(open(out + "/torch_heads.json"))
ts = t.get("ablate_s", t.get("ablate_s_est"))
est = " (estimated from every %dth prompt)" % t["sample"] if "ablate_s_est" in t else ""
print(f"heads ablate, GPT-2 small shape, {m['prompts']} prompts x {m['new_tokens']} new tokens, head {m['head']} zeroed, "
      f"{m['threads']} threads: mechscope (batched, KV cache) {m['ablate_s']:.2f} s, PyTorch the seed's way "
      f"(one prompt at a time, hook, no cache) {ts:.2f} s{est}: {ts / m['ablate_s']:.1f}x; "
      f"same generated ids for {t['same_ids']}/{t['prompts']} prompts")
print(f"heads screen --score causal: {m['causal_cells']} cells (144 heads x {m['prompts']} pairs) in {m['causal_s']:.2f} s "
      f"= {m['causal_cells_per_s']:.0f} cells/s")
