"""Prints the SAE table of bench/run.sh from bench_sae / bench_sae_torch.py's JSON. The PyTorch baseline
(SAELens's way: the whole projection materialised) runs a fraction of the features; its time and its
memory above the inputs are scaled linearly to the full count (both grow linearly in the features)."""
import json
import sys
from pathlib import Path

d = Path(sys.argv[1])
print("\nSAE logit-weight statistics and TSEA: 24,576-feature random SAE on a GPT-2-small-shaped W_U (768 x 50,257),"
      " mechscope vs plain PyTorch as SAELens writes it")
print("| task | features | mechscope | peak RSS | PyTorch (SAELens's way) | peak RSS | speed-up |\n|---|---|---|---|---|---|---|")
for name, label in (("stats", "sae stats (W_dec W_U moments)"), ("tsea", "sae tsea (5 sets)")):
    ms = json.loads((d / f"sae_{name}.json").read_text())
    pt = json.loads((d / f"sae_{name}_torch.json").read_text())
    scale = ms["features"] / pt["features"]
    t_pt = pt["seconds"] * scale
    mem_pt = pt["inputs_rss_mb"] + (pt["peak_rss_mb"] - pt["inputs_rss_mb"]) * scale
    est = "" if scale == 1 else f" (est. from {pt['features']})"
    print(f"| {label} | {ms['features']} | {ms['seconds']:.1f} s | {ms['peak_rss_mb']/1024:.2f} GB | {t_pt:.1f} s{est} | "
          f"{mem_pt/1024:.1f} GB{est} | {t_pt/ms['seconds']:.1f}x |")
    key = "skewness_head" if name == "stats" else "scores_head"
    diff = max(abs(a - b) for a, b in zip(ms[key], pt[key]))
    print(f"|  | max difference on the shared features: {diff:.1e} | | | | | |")
