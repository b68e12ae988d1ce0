#!/usr/bin/env python3
"""Writes the training corpus of the shipped emotion model (examples/emotion/model) from templates.

Every text is a profile-style prompt followed by a continuation that fits it: the sentences are built
from the same openers, phrases, objects and tails as profiles/make_profiles.py (so every profile prompt
tokenizes without unknown words under the tokenizer `mechscope train --corpus` builds from this corpus),
and the continuation's words depend on the emotional phrase, which lies several tokens back, behind the
object and the tail. A model can only continue with the right sentiment by carrying the emotion forward
from the phrase, which is the job of attention heads: those are the heads `mechscope heads` finds.

  grateful -> warm, positive words      angry -> negative words
  apology  -> regretful words           neutral (the profile's neutral phrase) -> neutral words

Deterministic for a given --seed and --per-side (Python's random.Random is stable across versions):
  python3 examples/emotion/make_corpus.py --seed 0 --out corpus.jsonl
"""
import argparse
import importlib.util
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("make_profiles", os.path.join(HERE, "profiles", "make_profiles.py"))
profiles = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(profiles)

# What follows each tail of the profiles: frames with {adj} (after "was"/"is") or {feel} (after
# "feel"/"am"/"are") slots, so the continuation is grammatical after every tail.
FRAMES = {
    ", and": ["it was {adj} .", "i feel {feel} .", "that is {adj} ."],
    ". I": ["feel {feel} .", "think it was {adj} .", "am {feel} ."],
    " because": ["it was {adj} .", "i am {feel} .", "that was {adj} ."],
    ", so": ["i feel {feel} .", "it is {adj} .", "we are {feel} ."],
    ". It": ["was {adj} .", "is {adj} .", "made me feel {feel} ."],
    " and I": ["feel {feel} .", "think it was {adj} .", "am {feel} ."],
    ". We": ["are {feel} .", "think it was {adj} .", "feel {feel} ."],
    ", which": ["was {adj} .", "is {adj} .", "made me feel {feel} ."],
}

# The words of each continuation class; VADER scores the gratitude words positive, the anger and
# apology words negative and the neutral words 0 (checked by the README's recipe, not assumed).
WORDS = {
    "gratitude": {
        "adj": ["so nice of you", "wonderful", "really helpful", "truly generous", "lovely", "a great help",
                "amazing", "very thoughtful"],
        "feel": ["so happy", "very grateful", "really glad", "thankful", "delighted", "so lucky"],
        "end": ["thanks again .", "thank you so much .", "you are the best .", "i appreciate it ."],
    },
    "anger": {
        "adj": ["awful", "a total disaster", "completely unacceptable", "terrible", "a disgrace", "ridiculous",
                "really bad", "so stupid"],
        "feel": ["so angry", "really annoyed", "furious", "disgusted", "so mad", "so upset"],
        "end": ["this is unacceptable .", "i hate it .", "it makes me sick .", "shame on you ."],
    },
    "apology": {
        "adj": ["my fault", "a big mistake", "careless of me", "wrong of me", "a poor choice", "my mistake"],
        "feel": ["so sorry", "really ashamed", "terrible about it", "sad", "guilty", "awful about it"],
        "end": ["it was my fault .", "i regret it .", "i am so sorry .", "i feel terrible ."],
    },
    "neutral": {
        "adj": ["on the list", "in the folder", "on the table", "due next week", "in the notes", "part of the plan",
                "on the calendar", "in the second section"],
        "feel": ["at home", "in the office", "on the train", "still reading", "at my desk", "back at work"],
        "end": ["see you on monday .", "more details later .", "the notes are attached .", "we meet at noon ."],
    },
}


def continuation(rng, tail, cls):
    w = WORDS[cls]
    text = rng.choice(FRAMES[tail]).format(adj=rng.choice(w["adj"]), feel=rng.choice(w["feel"]))
    return text + " " + rng.choice(w["end"])


def corpus(seed, per_side):
    """per_side emotional and per_side neutral texts per emotion, interleaved in a seeded order."""
    rng = random.Random(seed)
    texts = []
    for emotion in sorted(profiles.PHRASES):
        for side in ("emotion", "neutral"):
            for _ in range(per_side):
                opener, (emo, neu), obj, tail = (rng.choice(profiles.OPENERS), rng.choice(profiles.PHRASES[emotion]),
                                                 rng.choice(profiles.OBJECTS), rng.choice(profiles.TAILS))
                phrase, cls = (emo, emotion) if side == "emotion" else (neu, "neutral")
                texts.append(f"{opener} {phrase} {obj}{tail} {continuation(rng, tail, cls)}")
    rng.shuffle(texts)
    return texts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--per-side", type=int, default=2000,
                    help="emotional texts, and as many neutral ones, per emotion (default 2000)")
    ap.add_argument("--out", required=True, help="output JSONL file of {\"text\": ...}")
    a = ap.parse_args()
    if a.per_side < 1:
        sys.exit("make_corpus.py: --per-side must be at least 1, got %d" % a.per_side)
    texts = corpus(a.seed, a.per_side)
    tmp = a.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    os.replace(tmp, a.out)
    print("wrote %d texts to %s" % (len(texts), a.out))


if __name__ == "__main__":
    main()
