#!/usr/bin/env python3
"""FLOPs of one fact's causal trace, to scale a time measured on one model shape to another (issue 18's
plan for GPT-2-XL). The count follows what the fast path recomputes: a cell restored at token t and
layer L re-runs positions t..T-1 from its lowest restored layer (L for the hidden state, L - window/2
for MLP and attention windows) to the last layer, for every noise sample, at 24 d^2 FLOPs per token and
layer (the four attention and two MLP projections, d_mlp = 4 d), and unembeds the last position
(2 d V). It is an upper bound of the engine's work (window cells clipped at layer 0 share their first
layers, the last block carries one row), and both shapes are counted alike, so their ratio is what the
time scales by.

usage: trace_flops.py LAYERS D_MODEL VOCAB TOKENS SAMPLES WINDOW KINDS   (KINDS: e.g. all,mlp,attn)
       trace_flops.py --ratio "12 768 50257 11 3 10 all,mlp" "48 1600 50257 16 10 10 all,mlp,attn"
"""
import sys


def flops(layers, d, vocab, tokens, samples, window, kinds):
    total = 0
    for kind in kinds:
        for t in range(tokens):
            for layer in range(layers):
                start = layer if kind == "all" else max(0, layer - window // 2)
                total += samples * ((tokens - t) * (layers - start) * 24 * d * d + 2 * d * vocab)
    return total


def parse(args):
    layers, d, vocab, tokens, samples, window = (int(x) for x in args[:6])
    return layers, d, vocab, tokens, samples, window, args[6].split(",")


if __name__ == "__main__":
    if sys.argv[1] == "--ratio":
        a, b = flops(*parse(sys.argv[2].split())), flops(*parse(sys.argv[3].split()))
        print("%.3g FLOP -> %.3g FLOP: x%.1f" % (a, b, b / a))
    else:
        print("%.3g" % flops(*parse(sys.argv[1:])))
