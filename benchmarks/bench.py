"""Speed and memory of INR-HSISR: training step and inference, readable vs fast paths.

Prints a table (and optionally writes JSON). Each case runs in its own subprocess so that
peak memory is measured per case (CPU: peak resident set size of that process; CUDA:
``torch.cuda.max_memory_allocated``).

Examples::

    python benchmarks/bench.py --device cpu                      # both presets, a few minutes
    python benchmarks/bench.py --device cuda --json benchmarks/results/h100.json \
        --dtypes fp32 tf32 bf16 --compile off on                 # GPU mode (see README.md)

Cases: for every preset x pixelwise path x dtype x compile setting,

* ``train``: one optimisation step (forward, L1 loss, backward, Adam) on a batch of
  ``crop x crop`` crops; reports ms/step and samples/s;
* ``infer``: ``model.predict`` of one ``image x image`` image as ``crop x crop`` tiles
  (overlap 16, ``--infer-batch`` tiles at a time); reports ms/image.

FLOPs are counted once per preset with ``torch.utils.flop_counter.FlopCounterMode``
(forward; a training step is counted as 3x forward), and achieved FLOP/s is compared with
the device's peak where it is known.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

# dense peak TFLOP/s by (device name fragment, dtype) from the vendors' data sheets
PEAKS = {
    ("H200", "bf16"): 989.0, ("H200", "tf32"): 494.0, ("H200", "fp32"): 67.0,
    ("H100", "bf16"): 989.0, ("H100", "tf32"): 494.0, ("H100", "fp32"): 67.0,
    ("A100", "bf16"): 312.0, ("A100", "tf32"): 156.0, ("A100", "fp32"): 19.5,
    ("T4", "fp16"): 65.0, ("T4", "fp32"): 8.1,
    ("L4", "bf16"): 121.0, ("L4", "fp32"): 30.3,
}


def peak_tflops(device_name: str, dtype: str):
    for (frag, dt), v in PEAKS.items():
        if frag in device_name and dt == dtype:
            return v
    return None


# ------------------------------------------------------------------------------ one case
def run_case(spec: dict) -> dict:
    import torch

    from inr_lib import build_model
    from inr_lib.train import grad_scaler, train_step

    torch.manual_seed(0)
    dev = torch.device(spec["device"])
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    dtype = spec["dtype"]
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = dtype == "tf32"
        torch.backends.cudnn.allow_tf32 = dtype == "tf32"
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(dtype)
    model = build_model(spec["preset"], pixelwise=spec["path"]).to(dev)
    if spec["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    fwd = torch.compile(model) if spec["compile"] else model

    def autocast():
        return torch.autocast(dev.type, dtype=amp) if amp is not None else torch.autocast(dev.type, enabled=False)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    out = dict(spec)
    c, b = spec["crop"], spec["batch"]
    try:
        if spec["kind"] == "train":
            model.train()
            opt = torch.optim.Adam(model.parameters(), lr=1e-4)
            scaler = grad_scaler(enabled=(dtype == "fp16"))
            batch = (torch.rand(b, 3, c, c, device=dev), torch.rand(b, 31, c, c, device=dev))

            def step():          # the training loop's own step (inr_lib.train.train_step)
                train_step(fwd, batch, opt, scaler, amp)
        else:
            model.eval()
            img = torch.rand(1, 3, spec["image"], spec["image"], device=dev)

            def step():
                with torch.no_grad(), autocast():
                    if spec["compile"]:
                        # tiled inference through the compiled module (fixed tile shape)
                        model_fwd = model.forward
                        model.forward = fwd  # noqa: B010 - route predict's calls through compile
                        try:
                            model.predict(img, tile=c, overlap=16, batch_size=spec["infer_batch"])
                        finally:
                            model.forward = model_fwd
                    else:
                        model.predict(img, tile=c, overlap=16, batch_size=spec["infer_batch"])
        for _ in range(spec["warmup"]):
            step()
        sync()
        times = []
        for _ in range(spec["repeat"]):
            t0 = time.perf_counter()
            step()
            sync()
            times.append(time.perf_counter() - t0)
        times.sort()
        out["seconds"] = times[len(times) // 2]        # median
        out["seconds_min"] = times[0]
        if spec["kind"] == "train":
            out["samples_per_s"] = b / out["seconds"]
        if dev.type == "cuda":
            out["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
            out["device_name"] = torch.cuda.get_device_name()
        else:
            import resource
            out["peak_mem_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            out["device_name"] = platform.processor() or platform.machine()
        out["status"] = "ok"
    except torch.OutOfMemoryError as e:  # pragma: no cover - GPU only
        out["status"] = f"out of memory: {str(e).splitlines()[0]}"
    except RuntimeError as e:
        out["status"] = f"error: {str(e).splitlines()[0][:200]}"
    return out


def count_flops(preset: str, crop: int, image: int) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from inr_lib import build_model

    model = build_model(preset).eval()
    res = {}
    for name, size in (("crop", crop), ("image", image)):
        x = torch.rand(1, 3, size, size)
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            if name == "crop":
                model(x)
            else:
                model.predict(x, tile=crop, overlap=16)
        res[name] = fc.get_total_flops()
    return res


# ------------------------------------------------------------------------------ driver
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--presets", nargs="+", default=["small", "paper"])
    ap.add_argument("--paths", nargs="+", default=["readable", "fast"])
    ap.add_argument("--dtypes", nargs="+", default=["fp32"], help="fp32 tf32 bf16 fp16")
    ap.add_argument("--compile", nargs="+", default=["off"], choices=["off", "on"])
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--batch", type=int, default=None,
                    help="training batch (default: 56 on CUDA; 16 small / 4 paper on CPU)")
    ap.add_argument("--image", type=int, default=None,
                    help="side of the inference image (default: 512 on CUDA, 256 on a CPU)")
    ap.add_argument("--infer-batch", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--kinds", nargs="+", default=["train", "infer"])
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.case:   # child process
        print(json.dumps(run_case(json.loads(args.case))))
        return

    cuda = args.device.startswith("cuda")
    if args.image is None:
        args.image = 512 if cuda else 256
    rows = []
    flops = {p: count_flops(p, args.crop, args.image) for p in args.presets}
    for preset in args.presets:
        batch = args.batch or (56 if cuda else (16 if preset != "paper" else 4))
        for kind in args.kinds:
            for dtype in args.dtypes:
                for comp in args.compile:
                    for path in args.paths:
                        spec = dict(kind=kind, preset=preset, path=path, dtype=dtype,
                                    compile=comp == "on", channels_last=args.channels_last,
                                    device=args.device, crop=args.crop, batch=batch,
                                    image=args.image, infer_batch=args.infer_batch,
                                    repeat=args.repeat or (10 if cuda else 2),
                                    warmup=args.warmup if args.warmup is not None else (3 if cuda else 1),
                                    threads=args.threads)
                        proc = subprocess.run([sys.executable, __file__, "--case", json.dumps(spec)],
                                              capture_output=True, text=True)
                        try:
                            r = json.loads(proc.stdout.strip().splitlines()[-1])
                        except (IndexError, json.JSONDecodeError):
                            r = dict(spec, status="crashed: " + (proc.stderr.strip().splitlines() or ["?"])[-1][:200])
                        f = flops[preset]
                        if r.get("status") == "ok":
                            work = 3 * f["crop"] * batch if kind == "train" else f["image"]
                            r["tflops_achieved"] = work / r["seconds"] / 1e12
                            peak = peak_tflops(r.get("device_name", ""), dtype)
                            r["peak_fraction"] = r["tflops_achieved"] / peak if peak else None
                        rows.append(r)
                        _print_row(r)
    # ratios readable / fast for matching cases
    print("\nspeed-up of the fast path over the readable path (same preset, kind, dtype, compile):")
    for r in rows:
        if r["path"] != "fast" or r.get("status") != "ok":
            continue
        ref = next((q for q in rows if q["path"] == "readable" and q.get("status") == "ok" and
                    all(q[k] == r[k] for k in ("preset", "kind", "dtype", "compile"))), None)
        if ref:
            r["speedup_vs_readable"] = ref["seconds"] / r["seconds"]
            print(f"  {r['preset']:6s} {r['kind']:5s} {r['dtype']:4s} compile={'on' if r['compile'] else 'off'}: "
                  f"{r['speedup_vs_readable']:.2f}x")
    meta = dict(device=args.device, python=platform.python_version(), machine=platform.machine(),
                cpus=os.cpu_count(), flops_forward=flops, date=time.strftime("%Y-%m-%d %H:%M"))
    try:
        import torch
        meta["torch"] = torch.__version__
        if cuda:
            meta["device_name"] = torch.cuda.get_device_name()
    except Exception:  # pragma: no cover
        pass
    print("\nforward FLOPs: " + ", ".join(
        f"{p}: {v['crop'] / 1e9:.2f} GFLOP per {args.crop}x{args.crop} crop, "
        f"{v['image'] / 1e12:.3f} TFLOP per {args.image}x{args.image} image (tiled)" for p, v in flops.items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
        print(f"wrote {args.json}")


def _print_row(r):
    head = f"{r['preset']:6s} {r['kind']:5s} {r['path']:8s} {r['dtype']:4s} compile={'on ' if r['compile'] else 'off'}"
    if r.get("status") != "ok":
        print(f"{head}  {r.get('status')}")
        return
    extra = (f"batch {r['batch']:3d}: {r['seconds'] * 1e3:9.1f} ms/step {r['samples_per_s']:8.1f} samples/s"
             if r["kind"] == "train" else f"{r['image']}x{r['image']}: {r['seconds'] * 1e3:9.1f} ms/image        ")
    peak = f" ({100 * r['peak_fraction']:.1f}% of peak)" if r.get("peak_fraction") else ""
    print(f"{head}  {extra}  peak mem {r['peak_mem_gib']:6.2f} GiB  {r['tflops_achieved']:7.3f} TFLOP/s{peak}",
          flush=True)


if __name__ == "__main__":
    main()
