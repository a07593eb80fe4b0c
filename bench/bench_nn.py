#!/usr/bin/python3
"""make bench-nn: single-thread latency of the C nn runtime against OpenCV DNN.

For each model: p50/p99 of build/tools/bench_nn in fp32 and with its dense
convolutions in int8 (nn_model_use_int8), and of cv2.dnn (setNumThreads(1)), on the
same input in the same run; the int8/fp32 speed-up, the speed-up of the faster C
variant over OpenCV, and GFLOP/s (2 x MACs counted from the graph / fp32 p50). A
second table gives the p50 of the thread's CPU time, which on a shared machine
leaves out the time spent waiting for a core, and the same ratios on it. Then
resident memory of all models loaded (one session each) against their weight
bytes, fp32 and int8. Run from the repository root.
"""
import json
import os
import platform
import subprocess
import sys
import time

try:
    import cv2
    import numpy as np
except ImportError:   # `python3` may be a pyenv without Debian's python3-opencv
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

TOOL = "build/tools/bench_nn"
ITERS = int(os.environ.get("BENCH_ITERS", "200"))
MODELS = [
    ("fr_detect", "models/faceplugin/fr_detect.onnx", (1, 3, 240, 320)),
    ("fr_landmark", "models/faceplugin/fr_landmark.onnx", (1, 1, 64, 64)),
    ("fr_feature", "models/faceplugin/fr_feature.onnx", (1, 3, 112, 112)),
    ("fr_liveness", "models/faceplugin/fr_liveness.onnx", (1, 3, 128, 128)),
    ("fr_age", "models/faceplugin/fr_age.onnx", (1, 3, 64, 64)),
    ("blazeface-back", "models/human/blazeface-back.json", (1, 256, 256, 3)),
    ("facemesh", "models/human/facemesh.json", (1, 192, 192, 3)),
    ("faceres-deep", "models/human/faceres-deep.json", (1, 224, 224, 3)),
    ("mobilefacenet", "models/human/mobilefacenet.json", (1, 112, 112, 3)),
    ("MobileFaceNet", "models/expo/MobileFaceNet.tflite", (2, 112, 112, 3)),   # face + mirror
    ("FaceAntiSpoof", "models/expo/FaceAntiSpoofing.tflite", (1, 256, 256, 3)),
]


def opencv_times(path, x):
    net = cv2.dnn.readNetFromONNX(path)
    names = net.getUnconnectedOutLayersNames()
    for _ in range(3):
        net.setInput(x)
        net.forward(names)
    t, cpu = [], []
    for _ in range(ITERS):
        t0, c0 = time.perf_counter(), time.thread_time()
        net.setInput(x)
        net.forward(names)
        t.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.thread_time() - c0) * 1e3)
    return np.percentile(t, 50), np.percentile(t, 99), np.percentile(cpu, 50)


def main():
    cv2.setNumThreads(1)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"machine: {cpu}, {os.cpu_count()} cores, {platform.system()}; OpenCV {cv2.__version__}; "
          f"{ITERS} runs per model, 1 thread")
    head = (f"{'model':15} {'fp32 p50':>8} {'fp32 p99':>8} {'int8 p50':>8} {'int8 p99':>8} {'int8/fp32':>9} "
            f"{'CV p50':>8} {'CV p99':>8} {'vs CV':>7} {'GMAC':>7} {'GFLOP/s':>8} {'int8 conv':>9}")
    print(head)
    print("-" * len(head))
    rng = np.random.default_rng(1)
    cpu_rows = []
    for name, path, shape in MODELS:
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        x.tofile("/tmp/bench_nn_input.f32")
        runs = [subprocess.run([TOOL, "bench", path, "/tmp/bench_nn_input.f32", str(ITERS)] + extra,
                               capture_output=True, text=True) for extra in ([], ["int8"])]
        if any(r.returncode for r in runs):
            print(f"{name:15} C runtime failed: {' '.join(r.stderr.strip() for r in runs)}")
            continue
        c, q = (json.loads(r.stdout) for r in runs)
        gflops = 2 * c["macs"] / (c["p50_ms"] * 1e-3) / 1e9
        best = min(c["p50_ms"], q["p50_ms"])
        cvcpu = None
        if path.endswith(".onnx"):
            cv50, cv99, cvcpu = opencv_times(path, x)
            cvs = f"{cv50:8.2f} {cv99:8.2f} {cv50 / best:6.2f}x"
        else:
            cvs = f"{'-':>8} {'-':>8} {'-':>7}"   # OpenCV 4.6 DNN reads neither TF.js nor TFLite
        cpu_rows.append((name, c["cpu_p50_ms"], q["cpu_p50_ms"], cvcpu))
        print(f"{name:15} {c['p50_ms']:8.2f} {c['p99_ms']:8.2f} {q['p50_ms']:8.2f} {q['p99_ms']:8.2f} "
              f"{c['p50_ms'] / q['p50_ms']:8.2f}x {cvs} {c['macs'] / 1e9:7.3f} {gflops:8.1f} {q['int8_convs']:9d}")
    print(f"\nCPU time of the running thread, p50 (ms)\n{'model':15} {'fp32':>8} {'int8':>8} {'int8/fp32':>9} "
          f"{'CV':>8} {'vs CV':>7}")
    for name, fp, q8, cv in cpu_rows:
        cvs = f"{cv:8.2f} {cv / min(fp, q8):6.2f}x" if cv else f"{'-':>8} {'-':>7}"
        print(f"{name:15} {fp:8.2f} {q8:8.2f} {fp / q8:8.2f}x {cvs}")
    paths = [p for _, p, _ in MODELS]
    print()
    for label, extra in (("fp32", []), ("int8", ["int8"])):
        r = subprocess.run([TOOL, "memory"] + extra + paths, capture_output=True, text=True)
        if r.returncode == 0:
            m = json.loads(r.stdout)
            print(f"memory {label}, all {len(paths)} models loaded + one session each: RSS {m['rss_kb'] / 1024:.1f} MiB, "
                  f"weights {m['weight_kb'] / 1024:.1f} MiB, ratio {m['rss_kb'] / max(m['weight_kb'], 1):.2f}x")
        else:
            print(f"memory {label} measurement failed:", r.stderr.strip())
    os.unlink("/tmp/bench_nn_input.f32")


if __name__ == "__main__":
    sys.exit(main())
