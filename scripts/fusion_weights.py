#!/usr/bin/python3
"""Chooses the accurate mode's fusion weights (FUSION_W_* in
src/face/pipeline_internal.h, used by src/face/embed_accurate.c) on LFW DevTrain
people only.

Input: the accurate mode's LFW embeddings written by `make bench-accuracy`
(build/lfw_embeddings_accurate.{tsv,f32}): the fr_feature, dlib and MobileFaceNet
parts one after the other, each scaled by the square root of its current weight;
each part is normalised here again, so the weights the embeddings were made with do
not matter. Only images of people in peopleDevTrain.txt are used: every pair of them
is a genuine or impostor pair (the LFW 10-fold test pairs are never looked at).

The weights it proposes are the z-normalised sum's: each cosine weighed by 1 / its
impostor standard deviation, normalised to sum 1 (printed last). No search is
needed for them, so they carry no selection noise; the grid it prints first (TAR
at FAR 1e-3 and 1e-4 and the balanced accuracy at the best threshold, LFW's own
measure, for every weight triple on a 0.05 grid summing to 1) shows where they
stand. Measured on DevTrain, every criterion is flat within about one genuine pair
in a wide region, and its grid optimum moves with the criterion (TAR: 0.20 / 0.55 /
0.25, balanced accuracy: 0.10 / 0.85 / 0.05), so a grid optimum would be chosen by
noise.
    /usr/bin/python3 scripts/fusion_weights.py [LFW_DIR [EMBEDDINGS]]
(EMBEDDINGS: the path without .tsv/.f32, default build/lfw_embeddings_accurate)
"""
import itertools
import sys

import numpy as np

LFW = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/lfw"
EMB = sys.argv[2] if len(sys.argv) > 2 else "build/lfw_embeddings_accurate"
PARTS = [("fr_feature", 512), ("dlib", 128), ("mobilefacenet", 192)]
STEP = 20  # grid of 1 / STEP
FARS = (1e-3, 1e-4)

train = set()
with open(f"{LFW}/pairs_lfw/peopleDevTrain.txt") as f:
    next(f)
    for line in f:
        train.add(line.split()[0])
rows, people, n_rows = [], [], 0
with open(f"{EMB}.tsv") as f:
    for line in f:
        if line.startswith("#"):
            continue
        n_rows += 1
        r, ok, person, _ = line.rstrip("\n").split("\t")
        if ok == "1" and person in train:
            rows.append(int(r))
            people.append(person)
emb = np.fromfile(f"{EMB}.f32", "<f4").reshape(n_rows, -1)[rows]
assert emb.shape[1] == sum(d for _, d in PARTS), f"expected {sum(d for _, d in PARTS)}-d embeddings"
ids = np.unique(people, return_inverse=True)[1]
iu = np.triu_indices(len(rows), 1)
same = (ids[:, None] == ids[None, :])[iu]
cos, start = [], 0
for name, dim in PARTS:
    p = emb[:, start:start + dim]
    p = p / np.linalg.norm(p, axis=1, keepdims=True)
    cos.append((p @ p.T)[iu].astype(np.float32))
    start += dim
genuine = [c[same] for c in cos]
impostor = [c[~same] for c in cos]
del cos
n_imp = impostor[0].size
print(f"DevTrain people: {len(rows)} images, {same.sum()} genuine and {n_imp} impostor pairs")
sds = [c.std() for c in impostor]
z = [1 / s for s in sds]
print("impostor sd: " + ", ".join(f"{n} {s:.4f}" for (n, _), s in zip(PARTS, sds)))


def measure(weights):
    """TAR at each FAR of FARS, and the balanced accuracy at the best threshold
    (what LFW's 10-fold protocol measures on its 50/50 pairs: (TAR + TRR) / 2)."""
    imp = sum(w * c for w, c in zip(weights, impostor) if w)
    gen = sum(w * c for w, c in zip(weights, genuine) if w)
    top = np.sort(np.partition(imp, n_imp - TOP)[n_imp - TOP:])  # the highest impostor scores, ascending
    out = []
    for far in FARS:
        k = int(far * n_imp)
        t = top[TOP - 1 - k]  # the impostor score ranked k from the top
        out.append(100 * (gen > t).mean())
    g = np.sort(gen)
    frr = np.arange(g.size) / g.size  # threshold at each genuine score: those below are rejected
    far = (TOP - np.searchsorted(top, g)) / n_imp
    out.append(100 * (1 - (frr + far) / 2).max())
    return out


def show(label, w, m):
    print(label + ", ".join(f"{n} {v:.2f}" for (n, _), v in zip(PARTS, w)) + ": " +
          ", ".join(f"TAR@{far:.0e} {v:.2f}%" for far, v in zip(FARS, m)) + f", balanced accuracy {m[-1]:.3f}%")


TOP = 200000  # enough impostors for the balanced optimum (there FAR is well under 1 %)
for a, b in itertools.product(range(STEP + 1), repeat=2):
    if a + b <= STEP:
        w = (a / STEP, b / STEP, (STEP - a - b) / STEP)
        show("weights ", w, measure(w))
zw = [round(v / sum(z), 2) for v in z]
zw[-1] = round(1 - sum(zw[:-1]), 2)
show("z-normalised sum (the weights to use): ", zw, measure(zw))
