"""Prints the tables of bench/run.sh from the JSON each benchmark wrote (README's Performance)."""
import json
import sys
from pathlib import Path

d = Path(sys.argv[1])
ms = json.loads((d / "forward.json").read_text())
pt = json.loads((d / "torch.json").read_text())
patch = json.loads((d / "patch.json").read_text())
trace = json.loads((d / "trace.json").read_text())
tok = json.loads((d / "tokenize.json").read_text())

print("\nForward pass, GPT-2-small-shaped model (124M parameters): mechscope vs the same forward in plain PyTorch")
print(f"| measure | mechscope | PyTorch | ratio |\n|---|---|---|---|")
for k, label, scale, unit in (("load_s", "load", 1000, "ms"), ("forward_16_s", "forward, 16 tokens", 1000, "ms"),
                              ("forward_256_s", "forward, 256 tokens", 1000, "ms")):
    print(f"| {label} | {ms[k]*scale:.1f} {unit} | {pt[k]*scale:.1f} {unit} | {pt[k]/ms[k]:.1f}x |")

print("\nActivation patching on the 16-token IOI pair: fast engine vs --naive (one full forward per cell, as TransformerLens)")
print("| sweep | cells | fast | fast without no-op skip | naive | speed-up (without skip) |\n|---|---|---|---|---|---|")
for name in ("resid_pre", "block_every", "z_all_pos", "z"):
    s = patch[name]
    naive = s.get("naive_s", s.get("naive_s_est"))
    est = "" if "naive_s" in s else " (est.)"
    print(f"| {name} | {s['cells']} | {s['fast_s']:.2f} s | {s['fast_no_skip_s']:.2f} s | {naive:.1f} s{est} | "
          f"{s['speedup_fast_vs_naive']:.1f}x ({s['speedup_fast_no_skip_vs_naive']:.1f}x) |")
print(f"peak memory {patch['peak_rss_mb']:.0f} MB (model weights are memory-mapped)")
tp_path = d / "torch_patch.json"
if tp_path.exists():
    tp = json.loads(tp_path.read_text())
    tl = tp["transformer_lens"]
    naive = patch["resid_pre"].get("naive_s", patch["resid_pre"].get("naive_s_est"))
    print(f"\nThe resid_pre sweep ({tp['cells']} cells) in Python on {tp['device']}, one full forward per cell")
    print("| way | time | vs mechscope fast |\n|---|---|---|")
    fast = patch["resid_pre"]["fast_s"]
    print(f"| mechscope fast | {fast:.2f} s | 1.0x |")
    print(f"| mechscope --naive | {naive:.2f} s | {naive/fast:.1f}x |")
    print(f"| plain PyTorch loop | {tp['plain_s']:.2f} s | {tp['plain_s']/fast:.1f}x |")
    if isinstance(tl, dict):
        print(f"| TransformerLens {tl['version']} run_with_hooks | {tl['sweep_s']:.2f} s | {tl['sweep_s']/fast:.1f}x |")
        print(f"TransformerLens against the plain loop: max difference {tl['max_abs_diff_vs_plain']:.1e}")
    else:
        print(f"| TransformerLens | {tl} | |")

print("\nROME causal tracing of one fact (16 tokens, 3 kinds, 10 samples, 576 cells): fast path vs ROME's way (one batch of 11 per cell)")
print(f"| fast | naive | speed-up | max difference |\n|---|---|---|---|")
print(f"| {trace['fast_seconds']:.1f} s | {trace['naive_seconds']:.1f} s | {trace['speedup']:.1f}x | {trace['max_abs_diff']:.1e} |")

print("\nGPT-2 tokenizer (real vocabulary), seeded multi-script texts, one thread: mechscope vs HF tokenizers (Rust, Node binding)")
print("| texts | tokens | mechscope | HF tokenizers | ratio |\n|---|---|---|---|---|")
print(f"| {tok['texts']} | {tok['tokens']} | {tok['mechscope_s']*1000:.0f} ms | {tok['hf_tokenizers_s']*1000:.0f} ms | "
      f"{tok['speedup_vs_hf_tokenizers']:.1f}x |")
