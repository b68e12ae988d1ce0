"""Prints the AttentionViz benchmark (bench_attnviz vs torch_attnviz.py, same run) as a table, and
how far the two agree (c per head, PCA variance ratio)."""
import json
import sys

out = sys.argv[1]
m = json.load(open(out + "/attnviz.json"))
t = json.load(open(out + "/torch_attnviz.json"))
print(f"AttentionViz, BERT-base shape, {m['texts']} texts ({m['tokens']} tokens, {m['points_per_head']} points per head), "
      f"12 layers x 12 heads, {m['threads']} threads")
print(f"| step | mechscope | PyTorch + Python loop | ratio |")
print(f"|---|---|---|---|")
rows = [("extraction + attention check (12 layers)", "extract_s"), ("paper normalisation, 144 heads", "normalize_s"),
        ("PCA, 144 heads", "pca_s"), (f"t-SNE per head ({m['tsne_iterations']} iterations)", "tsne_s_per_head")]
for name, key in rows:
    a, b = m[key], t[key]
    print(f"| {name} | {a:.3f} s | {b:.3f} s | {b / a:.1f}x |")
if "extract_per_text_s" in m:  # the attnviz command's way: text by text, joined (same bits on every rank)
    a = m["extract_per_text_s"]
    print(f"| extraction text by text, joined (the attnviz command) | {a:.3f} s | {t['extract_s']:.3f} s "
          f"| {t['extract_s'] / a:.1f}x |")
total_m = m["extract_s"] + m["normalize_s"] + m["pca_s"] + 144 * m["tsne_s_per_head"]
total_t = t["extract_s"] + t["normalize_s"] + t["pca_s"] + 144 * t["tsne_s_per_head"]
print(f"| all four for 144 heads (t-SNE per head x 144) | {total_m:.1f} s | {total_t:.1f} s | {total_t / total_m:.1f}x |")
dc = max(abs(a - b) / b for a, b in zip(m["c"], t["c"]))
de = max(abs(a - b) for a, b in zip(m["pca_explained0"], t["pca_explained0"]))
print(f"agreement: c per head max relative difference {dc:.2e}; PCA variance ratio max difference {de:.2e}; "
      f"attention check max |diff| mechscope {m['attention_max_abs_diff']:.1e}, PyTorch {t['attention_max_abs_diff']:.1e}")
