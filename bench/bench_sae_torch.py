"""Baseline for bench_sae: the same computation in plain PyTorch the way SAELens's
feature_statistics.get_W_U_W_dec_stats_df / get_stats_df and tsea.calculate_batch_enrichment_scores do it
(the whole projection materialised, moments from z-scores, the hit matrix of every set x feature x token),
on the same random tensors. SAELens's way needs several copies of the [features, vocab] projection, so the
baseline runs FEATURES of them (default a fifth of mechscope's) and the report scales time and memory.
usage: bench_sae_torch.py stats|tsea THREADS FEATURES"""
import json
import resource
import sys
import time

import torch

what = sys.argv[1]
threads = int(sys.argv[2])
n = int(sys.argv[3])
if threads > 0:
    torch.set_num_threads(threads)
torch.manual_seed(0)
W_U = torch.randn(768, 50257) * 0.02
W_U = W_U - W_U.mean(dim=1, keepdim=True)
W_dec = torch.randn(24576, 768)
W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out = {"bench": "sae_" + what + "_torch", "features": n, "threads": torch.get_num_threads()}
with torch.no_grad():
    if what == "stats":
        t = time.perf_counter()
        proj = W_dec[:n] @ W_U                       # the projection, whole
        mean = proj.mean(dim=1, keepdim=True)
        diffs = proj - mean
        var = (diffs ** 2).mean(dim=1, keepdim=True)
        std = var ** 0.5
        z = diffs / std
        skew = torch.mean(z ** 3.0, dim=1)
        kurt = torch.mean(z ** 4.0, dim=1)
        out["seconds"] = time.perf_counter() - t
        out["skewness_head"] = skew[:8].tolist()
        out["kurtosis_head"] = kurt[:8].tolist()
    else:
        sets = [list(range(0, 50257, m)) for m in (2, 7, 31, 211, 1000)]
        longest = max(len(s) for s in sets)
        padded = torch.tensor([s + [-1] * (longest - len(s)) for s in sets])
        t = time.perf_counter()
        scores = W_dec[:n] @ W_U
        n_sets = padded.shape[0]
        n_scores, vocab = scores.shape
        valid = padded != -1
        mask = torch.zeros(n_sets, vocab, dtype=torch.bool)
        for i in range(n_sets):
            mask[i, padded[i][valid[i]]] = True
        _, order = scores.sort(dim=1, descending=True)
        hits = mask.unsqueeze(1).expand(-1, n_scores, -1).gather(2, order.unsqueeze(0).expand(n_sets, -1, -1))
        sizes = valid.sum(dim=1).float()
        up = (1.0 / sizes).view(-1, 1, 1)
        down = (1.0 / (vocab - sizes)).view(-1, 1, 1)
        running = torch.where(hits, up, -down).cumsum(dim=2)
        best = running.abs().max(dim=2).values
        out["seconds"] = time.perf_counter() - t
        out["scores_head"] = [best[s, f].item() for s in range(5) for f in range(4)]
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out["inputs_rss_mb"] = base_rss
print(json.dumps(out))
