"""Python peers of bench/bench_patch.cpp's naive resid_pre sweep (one full forward per cell): the
16-token IOI pair, clean blocks.L.hook_resid_pre[:, p] patched into the corrupted run for every layer L
and position p (12 x 16 = 192 cells), metric logit(" John") - logit(" Mary") at the last position.
  plain:            torch_gpt2.forward with the patch written into its loop (the same maths as
                    transformers' GPT-2);
  transformer_lens: a HookedTransformer built from the same weights and config (no download, no
                    processing: fold_ln, centring and value-bias folding off, so its numbers are the
                    plain forward's), each cell a run_with_hooks as transformer_lens.patching's
                    get_act_patch_resid_pre does; "TransformerLens not installed" where it is not
                    importable.
Both on MECHSCOPE_BENCH_DEVICE (cpu, cuda, cuda:N; bench/run.sh's DEVICE=), timed regions
synchronised. Prints one JSON object.

    torch_patch.py MODEL_DIR THREADS [REPS=1]"""
import json
import statistics
import sys
import time

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from torch_gpt2 import DEVICE, forward, load, sync  # noqa: E402

# "After John and Mary went to the store, Mary/John gave a bottle of milk to" (GPT-2 ids), as bench_patch.
CLEAN = [3260, 1757, 290, 5335, 1816, 284, 262, 3650, 11, 5335, 2921, 257, 9294, 286, 7545, 284]
CORRUPT = CLEAN[:9] + [1757] + CLEAN[10:]
ANSWER, WRONG = 1757, 5335


def timed(fn, reps):
    out, times = None, []
    for _ in range(reps):
        sync()
        t = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t)
    return out, statistics.median(times)


def plain_sweep(w, cfg, clean, corrupt):
    resid = []
    forward(w, cfg, clean, resid_pre=resid)
    n = clean.shape[1]
    vals = torch.empty(cfg["n_layer"], n, device=w["wte.weight"].device)
    for l in range(cfg["n_layer"]):
        for p in range(n):
            logits = forward(w, cfg, corrupt, last_only=True, patch=(l, p, resid[l][:, p]))
            vals[l, p] = logits[0, ANSWER] - logits[0, WRONG]
    return vals.cpu()  # the results back once


def hooked_transformer(w, cfg):
    """A HookedTransformer of torch_gpt2's weights (HF GPT-2 layout, Conv1D [in, out] matrices)."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    d, h, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    dh = d // h
    tc = HookedTransformerConfig(n_layers=L, d_model=d, n_ctx=cfg["n_positions"], d_head=dh, n_heads=h, d_mlp=4 * d,
                                 d_vocab=cfg["vocab_size"], act_fn="gelu_new", normalization_type="LN", eps=1e-5,
                                 positional_embedding_type="standard", device=DEVICE)
    model = HookedTransformer(tc)
    sd = {"embed.W_E": w["wte.weight"], "pos_embed.W_pos": w["wpe.weight"], "ln_final.w": w["ln_f.weight"],
          "ln_final.b": w["ln_f.bias"], "unembed.W_U": w["wte.weight"].t().contiguous(),
          "unembed.b_U": torch.zeros(cfg["vocab_size"], device=w["wte.weight"].device)}
    for l in range(L):
        p, b = f"h.{l}.", f"blocks.{l}."
        W_Q, W_K, W_V = w[p + "attn.c_attn.weight"].split(d, 1)  # [d, d] each: x @ W
        b_Q, b_K, b_V = w[p + "attn.c_attn.bias"].split(d, 0)
        for name, W_, b_ in (("Q", W_Q, b_Q), ("K", W_K, b_K), ("V", W_V, b_V)):
            sd[b + f"attn.W_{name}"] = W_.reshape(d, h, dh).permute(1, 0, 2).contiguous()  # [heads, d, d_head]
            sd[b + f"attn.b_{name}"] = b_.reshape(h, dh).contiguous()
        sd[b + "attn.W_O"] = w[p + "attn.c_proj.weight"].reshape(h, dh, d).contiguous()  # [heads, d_head, d]
        sd[b + "attn.b_O"] = w[p + "attn.c_proj.bias"]
        sd[b + "ln1.w"], sd[b + "ln1.b"] = w[p + "ln_1.weight"], w[p + "ln_1.bias"]
        sd[b + "ln2.w"], sd[b + "ln2.b"] = w[p + "ln_2.weight"], w[p + "ln_2.bias"]
        sd[b + "mlp.W_in"], sd[b + "mlp.b_in"] = w[p + "mlp.c_fc.weight"], w[p + "mlp.c_fc.bias"]
        sd[b + "mlp.W_out"], sd[b + "mlp.b_out"] = w[p + "mlp.c_proj.weight"], w[p + "mlp.c_proj.bias"]
    if hasattr(model, "load_and_process_state_dict"):
        model.load_and_process_state_dict(sd, fold_ln=False, center_writing_weights=False, center_unembed=False,
                                          fold_value_biases=False)
    else:
        model.load_state_dict(sd, strict=False)
    return model.to(DEVICE).eval()


def tl_sweep(model, clean, corrupt):
    _, cache = model.run_with_cache(clean, names_filter=lambda name: name.endswith("hook_resid_pre"))
    L, n = model.cfg.n_layers, clean.shape[1]
    vals = torch.empty(L, n, device=clean.device)
    for l in range(L):
        name = f"blocks.{l}.hook_resid_pre"
        for p in range(n):
            def hook(act, hook, p=p, src=cache[name]):
                act[:, p] = src[:, p]
                return act
            logits = model.run_with_hooks(corrupt, fwd_hooks=[(name, hook)])
            vals[l, p] = logits[0, -1, ANSWER] - logits[0, -1, WRONG]
    return vals.cpu()


def main():
    d = sys.argv[1]
    threads = int(sys.argv[2]) if len(sys.argv) > 2 and int(sys.argv[2]) > 0 else None
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    if threads:
        torch.set_num_threads(threads)
    cfg = json.load(open(d + "/config.json"))
    w = load(d + "/model.safetensors")
    clean = torch.tensor([CLEAN], device=DEVICE)
    corrupt = torch.tensor([CORRUPT], device=DEVICE)
    out = {"device": DEVICE, "threads": torch.get_num_threads(), "torch": torch.__version__, "sweep": "resid_pre",
           "cells": cfg["n_layer"] * len(CLEAN), "reps": reps}
    with torch.no_grad():
        forward(w, cfg, corrupt)  # warm-up (kernels, allocator)
        plain, out["plain_s"] = timed(lambda: plain_sweep(w, cfg, clean, corrupt), reps)
        try:
            import transformer_lens
        except ImportError:
            out["transformer_lens"] = "TransformerLens not installed"
        else:
            t = time.perf_counter()
            model = hooked_transformer(w, cfg)
            sync()
            tl = {"version": getattr(transformer_lens, "__version__", "?"), "build_s": time.perf_counter() - t}
            model(corrupt)  # warm-up
            vals, tl["sweep_s"] = timed(lambda: tl_sweep(model, clean, corrupt), reps)
            tl["max_abs_diff_vs_plain"] = float((vals - plain).abs().max())
            tl["plain_speedup_vs_transformer_lens"] = tl["sweep_s"] / out["plain_s"]
            out["transformer_lens"] = tl
    out["metric_range"] = [float(plain.min()), float(plain.max())]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
