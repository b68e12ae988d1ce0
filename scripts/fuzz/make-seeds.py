#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/seed-*) from the repo's
fixtures and a few hand-made edge cases. Run from the repo root; the output is checked in, so CI
replays it and `make fuzz` starts from it. Standard library only (no numpy: .npy is written by hand,
in numpy's format 1.0)."""
import io, json, os, struct, sys, zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(ROOT, "tests", "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def read(*p):
    with open(os.path.join(*p), "rb") as f:
        return f.read()


def safetensors(tensors, metadata=None):
    header, blobs, off = {}, [], 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def f32(vals):
    return struct.pack("<%df" % len(vals), *vals)


def npy(descr, shape, raw, fortran=False):
    d = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (
        descr, "True" if fortran else "False", "".join("%d, " % s for s in shape) if len(shape) != 1 else "%d," % shape[0])
    h = d.encode()
    pad = -(10 + len(h) + 1) % 64
    h = h + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + raw


def main():
    # safetensors: a mixed-dtype file, an empty one, a zero-size tensor, metadata.
    put("safetensors", "mixed", safetensors({
        "a": ("F32", [2, 3], f32(range(6))),
        "b": ("F16", [2], struct.pack("<2e", 1.5, -2.0)),
        "c": ("I64", [1], struct.pack("<q", 7)),
        "d": ("BF16", [2], b"\x80\x3f\x00\x40"),
        "e": ("U8", [3], b"\x01\x02\x03"),
        "f": ("BOOL", [2], b"\x01\x00"),
        "g": ("F64", [1], struct.pack("<d", 3.25)),
    }, {"format": "pt"}))
    put("safetensors", "empty", safetensors({}))
    put("safetensors", "zero-size", safetensors({"z": ("F32", [0, 4], b"")}))
    put("safetensors", "misaligned", safetensors({"u": ("U8", [1], b"\x09"), "x": ("F32", [1], f32([2.0]))}))

    # sharded index over the target's two shards (wte.weight in 1, ln_f.* in 2).
    idx = {"metadata": {"total_size": 36},
           "weight_map": {"wte.weight": "model-00001-of-00002.safetensors",
                          "ln_f.weight": "model-00002-of-00002.safetensors",
                          "ln_f.bias": "model-00002-of-00002.safetensors"}}
    put("checkpoint_index", "two-shards", json.dumps(idx, indent=2))
    put("checkpoint_index", "one-shard", json.dumps({"weight_map": {"wte.weight": "model-00001-of-00002.safetensors"}}))

    # config.json per family: first byte = index in the target's family list.
    fams = ["gpt2", "gpt_neo", "gpt_neox", "llama", "qwen2", "gemma2", "bert", "distilbert_sst"]
    for i, fam in enumerate(fams):
        put("config", fam, bytes([i]) + read(FIX, fam, "model", "config.json"))

    # tokenizer.json: the small real-format ones, plus GPT-2's cut to 400 tokens (its merges among them).
    for name in ["llama2_style", "llama3_style", "neox_style", "wordlevel"]:
        put("tokenizer_json", name, read(FIX, "tokenizers", name, "tokenizer.json") + b"\0\0Hello World! caf\xc3\xa9 12")
    put("tokenizer_json", "bert", read(FIX, "bert", "model", "tokenizer.json") + b"\0\0[CLS] Hello, UNAFFABLE na\xc3\xafve")
    g = json.loads(read(FIX, "gpt2", "model", "tokenizer.json"))
    keep = {t: i for t, i in g["model"]["vocab"].items() if i < 400}
    g["model"]["vocab"] = keep
    merges = []
    for m in g["model"]["merges"]:
        a, b = m.split(" ") if isinstance(m, str) else m
        if a in keep and b in keep and (a + b) in keep:
            merges.append(m)
    g["model"]["merges"] = merges
    g["added_tokens"] = [dict(t, id=399) for t in g.get("added_tokens", [])][:1]
    put("tokenizer_json", "gpt2-cut", json.dumps(g, ensure_ascii=False).encode() + b"\0\0 the cat sat on <|endoftext|>")

    # vocab files: byte 1 = BPE (vocab.json \0\0 merges.txt \0\0 text), byte 0 = WordPiece vocab.txt.
    mtxt = "#version: 0.2\n" + "\n".join(m if isinstance(m, str) else " ".join(m) for m in merges) + "\n"
    put("vocab_files", "bpe", b"\x01" + json.dumps(keep, ensure_ascii=False).encode() + b"\0\0" + mtxt.encode() + b"\0\0the cat")
    vocab = read(FIX, "bert", "model", "vocab.txt").decode().splitlines()[:2000]
    put("vocab_files", "wordpiece", b"\x00" + ("\n".join(vocab) + "\n").encode() + b"\0\0hello world unaffable")

    # facts: byte 0 = skip_bad.
    facts = read(ROOT, "examples", "kg", "facts.jsonl").decode().splitlines()[:5]
    put("facts", "kg", b"\x00" + ("\n".join(facts) + "\n").encode())
    put("facts", "rome", b"\x01" + json.dumps({"known_id": 3, "prompt": "The Eiffel Tower is in the city of",
                                               "subject": "Eiffel Tower", "attribute": " Paris"}).encode() + b"\n{bad\n")

    # patch --pairs.
    put("pairs", "text", "\n".join(json.dumps(x) for x in [
        {"clean": "When Mary and John went to the store, John gave a drink to",
         "corrupt": "When Mary and John went to the store, Mary gave a drink to", "answer": " Mary", "wrong": " John"},
        {"clean_ids": [1, 2, 3], "corrupt_ids": [1, 2, 4], "answer_id": 5, "wrong_id": 6}]) + "\n")

    # heads profile: byte 1 = the pairs file, byte 0 = keywords.json.
    prof = os.path.join(ROOT, "examples", "emotion", "profiles", "baseline")
    put("profile", "pairs", b"\x01" + b"\n".join(read(prof, "gratitude.jsonl").splitlines()[:3]) + b"\n")
    put("profile", "keywords", b"\x00" + read(prof, "keywords.json"))

    # regex: pattern \0\0 subject (GPT-2's and Llama 3's split patterns, a token-set regex).
    put("regex", "gpt2", r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""" + "\0\0" + "Hello world's 123 café  !!")
    put("regex", "llama3", r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""" + "\0\0" + "I'M 12345 here\n\n ok")
    put("regex", "tokenset", r"^Ġ?[A-Z][a-z]+$" + "\0\0" + "ĠParis")
    put("regex", "classes", r"[a-c\d]{2,4}?x*+(?=y)|[^\P{Lu}]" + "\0\0" + "ab12xyÉ")

    put("utf8", "mixed", "ascii é 日本 🙂 \u0378".encode())
    put("utf8", "bad", b"ok \xc3\x28 \xf0\x9f\x98 \xed\xa0\x80")

    # npy (byte 0) / npz (byte 1).
    a = npy("<f4", [2, 2], f32([1, 2, 3, 4]))
    put("npy", "f4", b"\x00" + a)
    put("npy", "f8-fortran", b"\x00" + npy("<f8", [2, 2], struct.pack("<4d", 1, 2, 3, 4), fortran=True))
    put("npy", "scalar", b"\x00" + npy("<i8", [], struct.pack("<q", 5)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("W_enc.npy", a)
        z.writestr("b_enc.npy", npy("<f4", [2], f32([0.5, -0.5])))
    put("npy", "npz-deflated", b"\x01" + buf.getvalue())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("threshold.npy", npy("<f4", [2], f32([0.1, 0.2])))
    put("npy", "npz-stored", b"\x01" + buf.getvalue())

    # SAELens cfg.json (d_in 4, d_sae 8 match the target's weights), several versions' layouts.
    put("sae_cfg", "standard", json.dumps({"architecture": "standard", "d_in": 4, "d_sae": 8,
                                           "hook_name": "blocks.0.hook_resid_pre", "apply_b_dec_to_input": True,
                                           "normalize_activations": "none", "model_name": "gpt2"}))
    put("sae_cfg", "jumprelu", json.dumps({"architecture": "jumprelu", "d_in": 4, "d_sae": 8,
                                           "hook_name": "blocks.1.hook_resid_post", "normalize_activations": "constant_norm_rescale"}))
    put("sae_cfg", "topk-v6", json.dumps({"architecture": "topk", "d_in": 4, "d_sae": 8, "k": 2,
                                          "metadata": {"hook_name": "blocks.2.attn.hook_z", "model_name": "gpt2"}}))
    put("sae_cfg", "kg", read(ROOT, "examples", "kg", "sae", "blocks.0.hook_resid_pre", "cfg.json"))

    put("json", "nested", json.dumps({"a": [1, 2.5e-3, None, True, {"b": "ü\u00e9"}], "c": -0}))
    put("json", "config", read(FIX, "gpt2", "model", "config.json"))


if __name__ == "__main__":
    sys.exit(main())
