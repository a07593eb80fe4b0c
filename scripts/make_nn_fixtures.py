#!/usr/bin/python3
"""Reference fixtures for tests/unit/test_nn.c.

For every model: a small input image (PNG, lossless, built from an LFW face),
the recipe turning its pixels into the model input (value = pixel*scale+offset,
layout), and the expected outputs as float32 little-endian. ONNX references come
from OpenCV DNN; TF.js references from the float64 numpy interpreter below;
face-api's from face-api itself (scripts/faceapi_ref/make_fixtures.js, run after
this script by `make test`: this one writes only their input crops).

The inputs are derived from the evaluation data, which never enters the
repository, so `make test` regenerates the fixtures under build/ (1.5 s) before the
unit tests run. From the repo root, with Debian's python3 (python3-opencv, numpy):
    /usr/bin/python3 scripts/make_nn_fixtures.py [LFW_DIR [OUT_DIR]]
"""
import base64
import json
import os
import sys

import cv2
import numpy as np

LFW = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/lfw"
OUT = sys.argv[2] if len(sys.argv) > 2 else "build/fixtures/nn"


def lfw_image(person):
    path = os.path.join(LFW, "lfw_deepfunneled", person, person + "_0001.jpg")
    img = cv2.imread(path)
    if img is None:
        sys.exit("cannot read " + path)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def crop_resize(rgb, box, size):
    x0, y0, x1, y1 = box
    return cv2.resize(rgb[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)


# name, model, person, crop box (or None = whole), (w, h), grey, scale, offset, layout
CASES = [
    ("fr_detect", "models/faceplugin/fr_detect.onnx", "Aaron_Eckhart", None, (320, 240), False, 1 / 128, -127 / 128, "nchw"),
    ("fr_landmark", "models/faceplugin/fr_landmark.onnx", "AJ_Cook", (65, 60, 185, 190), (64, 64), True, 1 / 256, 0.0, "nchw"),
    ("fr_feature", "models/faceplugin/fr_feature.onnx", "Aaron_Eckhart", (69, 69, 181, 181), (112, 112), False, 1 / 128, -127 / 128, "nchw"),
    ("fr_liveness", "models/faceplugin/fr_liveness.onnx", "AJ_Lamas", (25, 25, 225, 225), (128, 128), False, 1.0, 0.0, "nchw"),
    ("fr_age", "models/faceplugin/fr_age.onnx", "AJ_Lamas", (65, 60, 185, 190), (64, 64), False, 1 / 255, 0.0, "nchw"),
    ("blazeface-back", "models/human/blazeface-back.json", "Aaron_Eckhart", None, (256, 256), False, 1 / 127.5, -1.0, "nhwc"),
    ("facemesh", "models/human/facemesh.json", "AJ_Cook", (55, 50, 195, 200), (192, 192), False, 1 / 255, 0.0, "nhwc"),
    ("faceres-deep", "models/human/faceres-deep.json", "Aaron_Eckhart", (50, 50, 200, 200), (224, 224), False, 1.0, 0.0, "nhwc"),
    ("mobilefacenet", "models/human/mobilefacenet.json", "Aaron_Eckhart", (69, 69, 181, 181), (112, 112), False, 1 / 127.5, -1.0, "nhwc"),
]

# face-api's networks (weights manifests, graph built in src/nn/faceapi_load.c):
# here only the input crops, as PNG for the C test and raw RGB for the reference,
# scripts/faceapi_ref/make_fixtures.js (face-api itself on TF.js), which writes the
# recipes and outputs. name, person, crop box, size
FACEAPI_CASES = [
    ("faceapi-age_gender", "AJ_Lamas", (50, 45, 200, 195), (112, 112)),
    ("faceapi-recognition", "Aaron_Eckhart", (50, 50, 200, 200), (150, 150)),
]

# ---------------------------------------------------------------------------
# float64 TF.js graph-model interpreter (only the ops the face models use)


def tf_weights(path):
    model = json.load(open(path))
    base = os.path.dirname(path)
    consts = {}
    for group in model["weightsManifest"]:
        data = b"".join(open(os.path.join(base, p), "rb").read() for p in group["paths"])
        pos = 0
        for w in group["weights"]:
            shape = w["shape"]
            n = int(np.prod(shape)) if shape else 1
            q = w.get("quantization")
            dt = q["dtype"] if q else w["dtype"]
            np_dt = {"float32": "<f4", "int32": "<i4", "float16": "<f2", "uint8": "u1", "uint16": "<u2"}[dt]
            size = np.dtype(np_dt).itemsize * n
            arr = np.frombuffer(data[pos:pos + size], np_dt).astype(np.float64)
            pos += size
            if q and dt in ("uint8", "uint16"):
                arr = arr * q["scale"] + q["min"]
            consts[w["name"]] = arr.reshape(shape)
    return model, consts


def attr_ints(node, name, default):
    v = node.get("attr", {}).get(name, {}).get("list", {}).get("i")
    return [int(x) for x in v] if v else default


def attr_s(node, name):
    s = node.get("attr", {}).get(name, {}).get("s")
    return base64.b64decode(s).decode() if s else ""


def same_pads(size, k, s, d):
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def pads_for(node, x, kh, kw, sh, sw, dh, dw):
    mode = attr_s(node, "padding")
    if mode == "SAME":
        return same_pads(x.shape[1], kh, sh, dh), same_pads(x.shape[2], kw, sw, dw)
    if mode == "EXPLICIT":
        ep = attr_ints(node, "explicit_paddings", [0] * 8)
        return (ep[2], ep[3]), (ep[4], ep[5])
    return (0, 0), (0, 0)


def windows(x, kh, kw, sh, sw, dh, dw, ph, pw, fill=0.0):
    x = np.pad(x, ((0, 0), ph, pw, (0, 0)), constant_values=fill)
    oh = (x.shape[1] - ((kh - 1) * dh + 1)) // sh + 1
    ow = (x.shape[2] - ((kw - 1) * dw + 1)) // sw + 1
    cols = np.empty((x.shape[0], oh, ow, kh, kw, x.shape[3]))
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = x[:, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw, :]
    return cols


def conv(node, x, f, depthwise):
    kh, kw = f.shape[0], f.shape[1]
    st = attr_ints(node, "strides", [1, 1, 1, 1])
    dl = attr_ints(node, "dilations", [1, 1, 1, 1])
    ph, pw = pads_for(node, x, kh, kw, st[1], st[2], dl[1], dl[2])
    cols = windows(x, kh, kw, st[1], st[2], dl[1], dl[2], ph, pw)
    if depthwise:   # f: kh,kw,c,m
        out = np.einsum("nhwijc,ijcm->nhwcm", cols, f)
        return out.reshape(out.shape[0], out.shape[1], out.shape[2], -1)
    return np.einsum("nhwijc,ijco->nhwo", cols, f)


def pool(node, x, op):
    ks = attr_ints(node, "ksize", [1, 1, 1, 1])
    st = attr_ints(node, "strides", [1, 1, 1, 1])
    ph, pw = pads_for(node, x, ks[1], ks[2], st[1], st[2], 1, 1)
    if op == "MaxPool":
        return windows(x, ks[1], ks[2], st[1], st[2], 1, 1, ph, pw, -np.inf).max(axis=(3, 4))
    s = windows(x, ks[1], ks[2], st[1], st[2], 1, 1, ph, pw).sum(axis=(3, 4))
    n = windows(np.ones_like(x[..., :1]), ks[1], ks[2], st[1], st[2], 1, 1, ph, pw).sum(axis=(3, 4))
    return s / n


def prelu(x, a):
    return np.where(x < 0, x * a.reshape(-1), x)


def fused_tail(node, y, args):
    ops = [base64.b64decode(s).decode() for s in node["attr"].get("fused_ops", {}).get("list", {}).get("s", [])]
    k = 0
    for op in ops:
        if op == "BiasAdd":
            y = y + args[k]; k += 1
        elif op == "Relu":
            y = np.maximum(y, 0)
        elif op == "Relu6":
            y = np.clip(y, 0, 6)
        elif op == "Prelu":
            y = prelu(y, args[k]); k += 1
        else:
            raise ValueError("fused op " + op)
    return y


def tf_run(path, x):
    model, consts = tf_weights(path)
    nodes = {n["name"]: n for n in model["modelTopology"]["node"]}
    vals = dict(consts)

    def get(ref):
        name = ref.split(":")[0]
        if name not in vals:
            vals[name] = evaluate(nodes[name])
        return vals[name]

    def evaluate(n):
        op = n["op"]
        ins = [get(r) for r in n.get("input", []) if not r.startswith("^")]
        if op == "Placeholder":
            return x
        if op in ("Identity", "StopGradient"):
            return ins[0]
        if op in ("_FusedConv2D", "Conv2D"):
            return fused_tail(n, conv(n, ins[0], ins[1], False), ins[2:])
        if op in ("FusedDepthwiseConv2dNative", "DepthwiseConv2dNative"):
            return fused_tail(n, conv(n, ins[0], ins[1], True), ins[2:])
        if op in ("_FusedMatMul", "MatMul"):
            w = ins[1].T if n["attr"].get("transpose_b", {}).get("b") else ins[1]
            return fused_tail(n, ins[0] @ w, ins[2:])
        binary = {"Add": np.add, "AddV2": np.add, "BiasAdd": np.add, "Sub": np.subtract, "Mul": np.multiply,
                  "RealDiv": np.divide, "Maximum": np.maximum, "Minimum": np.minimum}
        if op in binary:
            return binary[op](ins[0], ins[1])
        unary = {"Relu": lambda v: np.maximum(v, 0), "Relu6": lambda v: np.clip(v, 0, 6),
                 "Sigmoid": lambda v: 1 / (1 + np.exp(-v)), "Tanh": np.tanh, "Abs": np.abs, "Neg": np.negative,
                 "Square": np.square, "Sqrt": np.sqrt, "Rsqrt": lambda v: 1 / np.sqrt(v), "Exp": np.exp}
        if op in unary:
            return unary[op](ins[0])
        if op == "Prelu":
            return prelu(ins[0], ins[1])
        if op in ("MaxPool", "AvgPool"):
            return pool(n, ins[0], op)
        if op in ("Mean", "Sum", "Max"):
            axes = tuple(int(a) for a in np.atleast_1d(ins[1]))
            keep = bool(n["attr"].get("keep_dims", {}).get("b"))
            return {"Mean": np.mean, "Sum": np.sum, "Max": np.max}[op](ins[0], axis=axes, keepdims=keep)
        if op in ("Pad", "PadV2"):
            return np.pad(ins[0], ins[1].astype(int), constant_values=ins[2] if len(ins) > 2 else 0)
        if op == "Reshape":
            return ins[0].reshape([int(v) for v in ins[1]])
        if op == "Squeeze":
            return np.squeeze(ins[0], axis=tuple(attr_ints(n, "squeeze_dims", [])) or None)
        if op == "Softmax":
            e = np.exp(ins[0] - ins[0].max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
        if op == "ConcatV2":
            return np.concatenate(ins[:-1], axis=int(ins[-1]))
        raise ValueError("op " + op)

    sig = model.get("signature") or model.get("userDefinedMetadata", {}).get("signature") or {}
    outs = sig.get("outputs")
    refs = [v.get("name", k) for k, v in outs.items()] if outs else None
    if refs is None:  # every node nobody reads
        used = {r.split(":")[0].lstrip("^") for nd in nodes.values() for r in nd.get("input", [])}
        refs = [k for k, nd in nodes.items() if k not in used and nd["op"] not in ("Const", "Placeholder")]
    return [get(r) for r in refs]


# ---------------------------------------------------------------------------

def onnx_outputs(model):
    """Graph output names in file order (OpenCV sorts them)."""
    order = {"fr_detect": ["scores", "boxes"],
             "fr_age": ["prob_stage_1", "prob_stage_2", "prob_stage_3", "stage1_delta_k", "stage2_delta_k",
                        "stage3_delta_k", "index_offset_stage1", "index_offset_stage2", "index_offset_stage3"]}
    return order.get(os.path.basename(model)[:-5])


def main():
    os.makedirs(OUT, exist_ok=True)
    cv2.setNumThreads(1)
    for name, model, person, box, size, grey, scale, offset, layout in CASES:
        rgb = lfw_image(person)
        img = crop_resize(rgb, box, size) if box else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        if grey:
            img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
            cv2.imwrite(f"{OUT}/{name}.png", img)
        else:
            cv2.imwrite(f"{OUT}/{name}.png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        pix = img.astype(np.float32).reshape(img.shape[0], img.shape[1], -1)
        x = pix * np.float32(scale) + np.float32(offset)
        if layout == "nchw":
            net = cv2.dnn.readNetFromONNX(model)
            net.setInput(x.transpose(2, 0, 1)[None].copy())
            names = onnx_outputs(model) or list(net.getUnconnectedOutLayersNames())
            outs = [np.asarray(o, np.float64) for o in net.forward(names)]
        else:
            outs = tf_run(model, x[None].astype(np.float64))
        with open(f"{OUT}/{name}.txt", "w") as f:
            f.write(f"model {model}\nimage {name}.png\nlayout {layout}\nscale {scale!r}\noffset {offset!r}\n")
            for o in outs:
                tol = 2e-3 * max(1.0, float(np.abs(o).max()))
                f.write(f"output {o.size} {tol:.6g}\n")
        np.concatenate([o.ravel() for o in outs]).astype("<f4").tofile(f"{OUT}/{name}.out")
        print(name, [o.shape for o in outs])
    for name, person, box, size in FACEAPI_CASES:
        img = crop_resize(lfw_image(person), box, size)
        cv2.imwrite(f"{OUT}/{name}.png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        img.astype(np.uint8).tofile(f"{OUT}/{name}.rgb")


if __name__ == "__main__":
    main()
