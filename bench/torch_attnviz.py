"""Plain-PyTorch baseline for bench/bench_attnviz.cpp: the same AttentionViz steps written with torch
ops and a Python loop over heads, on the same model file and the inputs bench_attnviz wrote: a BERT
forward keeping each layer's q, k and attention, the attention recomputed from q and k, the paper's
normalisation per head (key centroid onto the query centroid; c from the same 81-point log grid and
40 golden-section steps), PCA by SVD per head, and t-SNE (exact gradient, vectorised per iteration)
for the first TSNE_HEADS heads. Prints one JSON object.

usage: torch_attnviz.py MODEL_DIR THREADS TSNE_HEADS TSNE_ITERS"""
import json
import math
import sys
import time

import torch
import torch.nn.functional as F

from torch_gpt2 import load


def bert_qk(w, ids, mask):
    d, h = 768, 12
    dh = d // h
    b, n = ids.shape
    e = "bert.embeddings."
    x = w[e + "word_embeddings.weight"][ids] + w[e + "position_embeddings.weight"][:n] + w[e + "token_type_embeddings.weight"][0]
    x = F.layer_norm(x, (d,), w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"], 1e-12)
    bias = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    qs, ks, pats = [], [], []
    for l in range(12):
        p = f"bert.encoder.layer.{l}."
        lin = lambda t, name: F.linear(t, w[p + name + ".weight"], w[p + name + ".bias"])
        q = lin(x, "attention.self.query").view(b, n, h, dh)
        k = lin(x, "attention.self.key").view(b, n, h, dh)
        v = lin(x, "attention.self.value").view(b, n, h, dh)
        a = torch.softmax(q.transpose(1, 2) @ k.transpose(1, 2).transpose(-1, -2) / math.sqrt(dh) + bias, -1)
        z = (a @ v.transpose(1, 2)).transpose(1, 2).reshape(b, n, d)
        x = F.layer_norm(x + lin(z, "attention.output.dense"), (d,), w[p + "attention.output.LayerNorm.weight"],
                         w[p + "attention.output.LayerNorm.bias"], 1e-12)
        m = F.gelu(lin(x, "intermediate.dense"))
        x = F.layer_norm(x + lin(m, "output.dense"), (d,), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], 1e-12)
        real = mask[:, :, None, None].double()
        qs.append(q.double() * real)
        ks.append(k.double() * real)
        pats.append(a.double() * mask[:, None, :, None].double())
    return qs, ks, pats


def extract(w, ids, mask):
    qs, ks, pats = bert_qk(w, ids, mask)
    allowed = (mask[:, :, None] & mask[:, None, :]).bool()
    worst = 0.0
    for q, k, p in zip(qs, ks, pats):
        s = torch.einsum("tihd,tjhd->thij", q, k) / 8.0
        s = s.masked_fill(~allowed[:, None], float("-inf"))
        mine = torch.nan_to_num(torch.softmax(s, -1)) * mask[:, None, :, None]
        worst = max(worst, (mine - p).abs().max().item())
    return qs, ks, pats, allowed, worst


def criterion(w, dot, qq, kk, c):
    y = -(qq * c * c + kk / (c * c) - 2 * dot).clamp_min(0).sqrt()
    sw = w.sum()
    mx, my = (w * dot).sum() / sw, (w * y).sum() / sw
    dx, dy = dot - mx, y - my
    return ((w * dx * dy).sum() / ((w * dx * dx).sum() * (w * dy * dy).sum()).sqrt()).item()


def normalize(q, k, attn, allowed, real):
    shift = (q.sum((0, 1)) - k.sum((0, 1))) / real.sum()
    kt = k + shift * real
    dot = (q @ kt.transpose(1, 2))[allowed]
    qq = (q * q).sum(-1)[:, :, None].expand_as(allowed)[allowed]
    kk = (kt * kt).sum(-1)[:, None, :].expand_as(allowed)[allowed]
    w = attn[allowed]
    cs = [math.exp(math.log(0.01) + i / 80 * (math.log(100) - math.log(0.01))) for i in range(81)]
    f = [criterion(w, dot, qq, kk, c) for c in cs]
    best = max(range(81), key=lambda i: (f[i], -i))
    lo, hi = math.log(cs[max(best - 1, 0)]), math.log(cs[min(best + 1, 80)])
    g = (math.sqrt(5) - 1) / 2
    x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
    f1, f2 = criterion(w, dot, qq, kk, math.exp(x1)), criterion(w, dot, qq, kk, math.exp(x2))
    for _ in range(40):
        if f1 < f2:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + g * (hi - lo)
            f2 = criterion(w, dot, qq, kk, math.exp(x2))
        else:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - g * (hi - lo)
            f1 = criterion(w, dot, qq, kk, math.exp(x1))
    c = math.exp(0.5 * (lo + hi))
    if criterion(w, dot, qq, kk, c) < f[best]:
        c = cs[best]
    return q * c, kt / c, c


def tsne(x, iters, perplexity=30.0, seed=0):
    n = x.shape[0]
    perp = min(perplexity, (n - 1) / 3)
    K = int(3 * perp)
    d2 = torch.cdist(x, x) ** 2
    d2.fill_diagonal_(float("inf"))
    vals, idx = d2.topk(K, largest=False)
    vals = vals - vals[:, :1]
    beta, lo, hi = torch.ones(n, dtype=x.dtype), torch.zeros(n, dtype=x.dtype), torch.full((n,), float("inf"), dtype=x.dtype)
    target = math.log(perp)
    for _ in range(200):
        p = torch.exp(-vals * beta[:, None])
        s = p.sum(1)
        H = torch.log(s) + beta * (p * vals).sum(1) / s
        up = H > target
        lo = torch.where(up, beta, lo)
        hi = torch.where(up, hi, beta)
        beta = torch.where(up, torch.where(torch.isinf(hi), beta * 2, (beta + hi) / 2), (beta + lo) / 2)
    p = torch.exp(-vals * beta[:, None])
    s = p.sum(1)
    P = torch.zeros(n, n, dtype=x.dtype).scatter_(1, idx, p / s[:, None])
    P = (P + P.t()) / (2 * n)
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(n, 2, generator=g, dtype=x.dtype) * 1e-4
    upd, gains = torch.zeros_like(y), torch.ones_like(y)
    lr = max(n / 12 / 4, 50)
    for it in range(iters):
        exag, mom = (12.0, 0.5) if it < min(250, iters // 2) else (1.0, 0.8)
        diff = y[:, None, :] - y[None, :, :]
        num = 1 / (1 + (diff * diff).sum(-1))
        num.fill_diagonal_(0)
        Q = num / num.sum()
        grad = 4 * (((exag * P - Q) * num)[:, :, None] * diff).sum(1)
        gains = torch.where((grad > 0) != (upd > 0), gains + 0.2, (gains * 0.8).clamp_min(0.01))
        upd = mom * upd - lr * gains * grad
        y = y + upd
        y = y - y.mean(0)
    return y


def main():
    d = sys.argv[1]
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    tsne_heads = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    tsne_iters = int(sys.argv[4]) if len(sys.argv) > 4 else 500
    if threads > 0:
        torch.set_num_threads(threads)
    w = load(d + "/model.safetensors")
    texts = json.load(open(d + "/attnviz_inputs.json"))
    n = max(len(t) for t in texts)
    ids = torch.zeros(len(texts), n, dtype=torch.long)
    mask = torch.zeros(len(texts), n, dtype=torch.long)
    for i, t in enumerate(texts):
        ids[i, : len(t)] = torch.tensor(t)
        mask[i, : len(t)] = 1
    out = {"threads": torch.get_num_threads(), "torch": torch.__version__}
    with torch.no_grad():
        extract(w, ids, mask)  # warm-up
        best = 1e9
        for _ in range(3):
            t0 = time.perf_counter()
            qs, ks, pats, allowed, worst = extract(w, ids, mask)
            best = min(best, time.perf_counter() - t0)
        out["extract_s"] = best
        out["attention_max_abs_diff"] = worst
        real = mask[:, :, None].double()
        t0 = time.perf_counter()
        normed, cs = [], []
        for l in range(12):
            for h in range(12):
                qn, kn, c = normalize(qs[l][:, :, h], ks[l][:, :, h], pats[l][:, h], allowed, real)
                normed.append((qn, kn))
                cs.append(c)
        out["normalize_s"] = time.perf_counter() - t0
        out["c"] = cs
        lens = mask.sum(1).tolist()
        pts = []
        for qn, kn in normed:
            rows = []
            for t, L in enumerate(lens):
                rows += [qn[t, :L], kn[t, :L]]
            pts.append(torch.cat(rows))
        t0 = time.perf_counter()
        ev0 = []
        for x in pts:
            xc = x - x.mean(0, keepdim=True)
            U, S, Vh = torch.linalg.svd(xc, full_matrices=False)
            coords = U[:, :2] * S[:2]
            ev0.append((S[0] ** 2 / (S ** 2).sum()).item())
        out["pca_s"] = time.perf_counter() - t0
        out["pca_explained0"] = ev0
        t0 = time.perf_counter()
        for x in pts[:tsne_heads]:
            tsne(x, tsne_iters)
        out["tsne_s"] = time.perf_counter() - t0
        out["tsne_s_per_head"] = out["tsne_s"] / max(1, tsne_heads)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
