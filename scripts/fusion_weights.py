#!/usr/bin/python3
"""Chooses the accurate mode's fusion weights (src/face/embed_dlib.c) on LFW DevTrain
people only.

Input: the accurate mode's LFW embeddings written by `make bench-accuracy`
(build/lfw_embeddings_accurate.{tsv,f32}: fr_feature part then dlib part, each of
norm sqrt(its current weight)). Only images of people in peopleDevTrain.txt are used:
every pair of them is a genuine or impostor pair. For each weight of fr_feature (the
dlib weight is 1 - w) it prints TAR at FAR 1e-3 and 1e-4 of the fused similarity
w * cos_feature + (1 - w) * cos_dlib, and the impostor standard deviations (the
z-normalised sum corresponds to w = sd_dlib / (sd_feature + sd_dlib)).
    /usr/bin/python3 scripts/fusion_weights.py [LFW_DIR [W_FEATURE_NOW]]
"""
import sys

import numpy as np

LFW = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/lfw"
W_NOW = float(sys.argv[2]) if len(sys.argv) > 2 else 0.5
FEATURE_DIM = 512

train = set()
with open(f"{LFW}/pairs_lfw/peopleDevTrain.txt") as f:
    next(f)
    for line in f:
        train.add(line.split()[0])
rows, people = [], []
with open("build/lfw_embeddings_accurate.tsv") as f:
    for line in f:
        if line.startswith("#"):
            continue
        r, ok, person, _ = line.rstrip("\n").split("\t")
        if ok == "1" and person in train:
            rows.append(int(r))
            people.append(person)
emb = np.fromfile("build/lfw_embeddings_accurate.f32", "<f4")
emb = emb.reshape(-1, emb.size // (len(open("build/lfw_embeddings_accurate.tsv").readlines()) - 1))[rows]
feat = emb[:, :FEATURE_DIM] / np.sqrt(W_NOW)
dlib = emb[:, FEATURE_DIM:] / np.sqrt(1 - W_NOW)
cf, cd = feat @ feat.T, dlib @ dlib.T
ids = np.unique(people, return_inverse=True)[1]
iu = np.triu_indices(len(rows), 1)
same = (ids[:, None] == ids[None, :])[iu]
cf, cd = cf[iu], cd[iu]
print(f"DevTrain people: {len(rows)} images, {same.sum()} genuine and {(~same).sum()} impostor pairs")
sf, sd = cf[~same].std(), cd[~same].std()
print(f"impostor sd: fr_feature {sf:.4f}, dlib {sd:.4f}; z-normalised sum = w_feature {sd / (sf + sd):.3f}")
for w in np.arange(0.0, 1.0001, 0.05):
    s = w * cf + (1 - w) * cd
    imp = np.sort(s[~same])[::-1]
    gen = s[same]
    out = []
    for far in (1e-3, 1e-4):
        t = imp[int(far * imp.size)]
        out.append(f"TAR@{far:.0e} {100 * (gen > t).mean():.2f}%")
    print(f"w_feature {w:.2f}: " + ", ".join(out))
