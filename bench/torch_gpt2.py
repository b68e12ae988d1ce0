"""Plain-PyTorch baseline for bench/bench_forward.cpp: the same GPT-2 forward (as transformers
computes it) written with torch ops, on the same safetensors file. Prints one JSON object."""
import json
import statistics
import struct
import sys
import time

import os

import numpy as np
import torch

# As the C++ benches' MECHSCOPE_BENCH_DEVICE: cpu (default), cuda, cuda:N.
DEVICE = os.environ.get("MECHSCOPE_BENCH_DEVICE", "cpu").replace("auto", "cuda" if torch.cuda.is_available() else "cpu")


def sync():
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


def load(path):
    # torch.load-free: safetensors is a JSON header + raw little-endian data.
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy()).to(DEVICE)
    return out


def forward(w, cfg, ids, ablate=(), last_only=False, cache=None, patch=None, resid_pre=None):
    """Logits [b, n, vocab] (last_only: [b, vocab]); ablate: (layer, head) pairs whose hook_z is zeroed.
    cache: a list that keeps each layer's keys and values (TransformerLens's past_kv_cache): ids are the
    tokens after those already in it, and theirs are appended.
    patch: (layer, pos, value [b, d]) puts value into blocks.{layer}.hook_resid_pre at pos (activation
    patching); resid_pre: a list that receives each layer's hook_resid_pre [b, n, d]."""
    d, h = cfg["n_embd"], cfg["n_head"]
    dh = d // h
    b, n = ids.shape
    dev = w["wte.weight"].device
    ids = ids.to(dev)
    past = cache[0][0].shape[2] if cache else 0
    x = w["wte.weight"][ids] + w["wpe.weight"][torch.arange(past, past + n, device=dev)]
    mask = torch.full((n, past + n), torch.finfo(torch.float32).min, device=dev).triu(past + 1)
    for l in range(cfg["n_layer"]):
        p = f"h.{l}."
        if patch is not None and patch[0] == l:
            x = x.clone()
            x[:, patch[1]] = patch[2]
        if resid_pre is not None:
            resid_pre.append(x)
        a = torch.nn.functional.layer_norm(x, (d,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], 1e-5)
        qkv = torch.addmm(w[p + "attn.c_attn.bias"], a.view(-1, d), w[p + "attn.c_attn.weight"]).view(b, n, 3, h, dh)
        q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
        if cache is not None:
            if len(cache) > l:
                k, v = torch.cat([cache[l][0], k], 2), torch.cat([cache[l][1], v], 2)
                cache[l] = (k, v)
            else:
                cache.append((k, v))
        att = torch.softmax(q @ k.transpose(-1, -2) / dh ** 0.5 + mask, -1)
        z = (att @ v).transpose(1, 2)  # [b, n, heads, d_head]: hook_z
        for (hl, hh) in ablate:
            if hl == l:
                z = z.clone()
                z[:, :, hh] = 0
        x = x + torch.addmm(w[p + "attn.c_proj.bias"], z.reshape(b * n, d), w[p + "attn.c_proj.weight"]).view(b, n, d)
        m = torch.nn.functional.layer_norm(x, (d,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], 1e-5)
        m = torch.nn.functional.gelu(torch.addmm(w[p + "mlp.c_fc.bias"], m.view(-1, d), w[p + "mlp.c_fc.weight"]), approximate="tanh")
        x = x + torch.addmm(w[p + "mlp.c_proj.bias"], m, w[p + "mlp.c_proj.weight"]).view(b, n, d)
    if last_only:
        x = x[:, -1]
    x = torch.nn.functional.layer_norm(x, (d,), w["ln_f.weight"], w["ln_f.bias"], 1e-5)
    return x @ w["wte.weight"].t()


def main():
    d = sys.argv[1]
    threads = int(sys.argv[2]) if len(sys.argv) > 2 and int(sys.argv[2]) > 0 else None
    if threads:
        torch.set_num_threads(threads)
    cfg = json.load(open(d + "/config.json"))
    loads = []
    for _ in range(5):
        t = time.perf_counter()
        w = load(d + "/model.safetensors")
        sync()
        loads.append(time.perf_counter() - t)
    out = {"load_s": statistics.median(loads), "threads": torch.get_num_threads(), "device": DEVICE}
    torch.manual_seed(0)
    with torch.no_grad():
        for n, reps in ((16, 30), (256, 10)):
            ids = torch.randint(0, cfg["vocab_size"], (1, n))
            times = []
            for i in range(reps + 2):
                t = time.perf_counter()
                forward(w, cfg, ids)
                sync()
                if i >= 2:
                    times.append(time.perf_counter() - t)
            out[f"forward_{n}_s"] = statistics.median(times)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
