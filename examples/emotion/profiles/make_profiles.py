#!/usr/bin/env python3
"""Writes the shipped prompt profiles (baseline: 70 pairs per emotion, extended: 220) from templates.

Each pair is one sentence twice: with an emotional phrase, and with a neutral phrase of the same GPT-2
token length in its place, so a head's activations can be patched position by position. Deterministic:
`python3 examples/emotion/profiles/make_profiles.py` rewrites the same files.
"""
import json
import os
import random

OPENERS = ["I", "Honestly, I", "Today I", "Dear Sam, I", "Right now I", "As your neighbour, I", "This morning I",
           "Once again I", "At work today I", "Sarah, I", "To be clear, I", "After the call, I", "Tonight I",
           "Dear team, I", "Well, I", "As always, I", "Mr. Brown, I", "In short, I"]

# emotion -> (emotional phrase, neutral phrase) pairs; each neutral phrase has as many GPT-2 tokens as its
# emotional one, so under GPT-2 the two prompts of a pair line up position by position.
PHRASES = {
    "gratitude": [("am truly grateful for", "am now writing about"), ("really appreciate", "just noticed"),
                  ("want to thank you for", "want to ask you about"), ("am so thankful for", "have been thinking about"),
                  ("can't thank you enough for", "have one more short question about"),
                  ("am deeply grateful for", "am still reading about"), ("thank you so much for", "told my sister all about"),
                  ("appreciate all of", "read all of")],
    "anger": [("am furious about", "am thinking about"), ("am so angry about", "am still reading about"),
              ("hate", "saw"), ("am fed up with", "am still looking at"), ("am outraged by", "was told about"),
              ("am sick and tired of", "have just been hearing about"), ("am livid about", "am now asking about"),
              ("can't stand", "just wrote down")],
    "apology": [("am so sorry about", "am telling you about"), ("deeply apologize for", "briefly comment on"),
                ("regret", "recall"), ("feel terrible about", "just heard about"),
                ("owe you an apology for", "want to ask you about"), ("sincerely apologize for", "will write about"),
                ("am ashamed of", "am aware of"), ("am really sorry for", "am really curious about")],
}

OBJECTS = ["the way you handled the delivery", "what happened at the meeting", "the late reply to your email",
           "the changes to the schedule", "your help with the move", "the noise last night", "the report you sent",
           "the mix-up with the tickets", "the dinner on Friday", "the repairs to the kitchen",
           "the decision about the budget", "the message you left", "the broken window", "the gift you brought",
           "the delay with your order", "the advice you gave me", "the comments in the review",
           "the trip to the coast", "the state of the office", "the way the project went", "your note about the rent",
           "the time you spent on this", "the parking situation", "the result of the vote"]

TAILS = [", and", ". I", " because", ", so", ". It", " and I", ". We", ", which"]

KEYWORDS = {
    "gratitude": ["thank", "thanks", "thankful", "grateful", "gratitude", "appreciate", "appreciated", "kind",
                  "generous", "glad", "wonderful"],
    "anger": ["angry", "furious", "hate", "mad", "annoyed", "outraged", "rage", "unacceptable", "livid",
              "disgusting", "awful"],
    "apology": ["sorry", "apologize", "apologise", "apology", "apologies", "regret", "forgive", "mistake", "fault",
                "ashamed", "terrible"],
}


def pairs(emotion, n, seed):
    rng = random.Random(seed)
    seen, out = set(), []
    while len(out) < n:
        opener, (emo, neu), obj, tail = (rng.choice(OPENERS), rng.choice(PHRASES[emotion]), rng.choice(OBJECTS),
                                         rng.choice(TAILS))
        key = (opener, emo, obj, tail)
        if key in seen:
            continue
        seen.add(key)
        out.append({"emotion": f"{opener} {emo} {obj}{tail}", "neutral": f"{opener} {neu} {obj}{tail}"})
    return out


def write(name, n, seed):
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
    os.makedirs(d, exist_ok=True)
    for i, emotion in enumerate(sorted(PHRASES)):
        with open(os.path.join(d, emotion + ".jsonl"), "w", encoding="utf-8") as f:
            for p in pairs(emotion, n, seed + i):
                f.write(json.dumps(p, ensure_ascii=False) + "\n")
    with open(os.path.join(d, "keywords.json"), "w", encoding="utf-8") as f:
        json.dump(KEYWORDS, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    write("baseline", 70, 1)
    write("extended", 220, 101)
