"""Throughput of the training data pipeline (random crops from in-memory scenes).

Examples::

    python benchmarks/loader.py --data synthetic --workers 0 2
    python benchmarks/loader.py --data cave:../shared/data/cave --batch 56 --workers 0 2 4

Prints crops/s for each number of DataLoader workers. Compare with the samples/s of a
training step in ``bench.py``: the loader must be far faster than the model consumes.
"""
from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader

from inr_lib.data import list_cave_scenes, load_cave_scene, resolve_cave_root
from inr_lib.data.patches import PatchDataset


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="synthetic", help="synthetic | cave:DIR")
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--batch", type=int, default=56)
    ap.add_argument("--crops-per-scene", type=int, default=56)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args(argv)

    if args.data.startswith("cave:"):
        root = args.data.split(":", 1)[1]
    else:
        root = str(resolve_cave_root("synthetic"))
    t0 = time.perf_counter()
    scenes = [load_cave_scene(d.path) for d in list_cave_scenes(root)]
    print(f"loaded {len(scenes)} scenes from {root} in {time.perf_counter() - t0:.1f} s")
    ds = PatchDataset(scenes, size=args.crop, crops_per_scene=args.crops_per_scene)
    for w in args.workers:
        dl = DataLoader(ds, batch_size=args.batch, shuffle=True, num_workers=w,
                        pin_memory=torch.cuda.is_available(), persistent_workers=w > 0)
        n, t0 = 0, None
        for epoch in range(args.epochs):
            if hasattr(ds, "set_epoch"):
                ds.set_epoch(epoch)
            for rgb, _hsi in dl:
                if t0 is None:          # exclude worker start-up
                    t0 = time.perf_counter()
                    continue
                n += rgb.shape[0]
        dt = time.perf_counter() - t0
        print(f"workers={w}: {n / dt:10.0f} crops/s ({n} crops of {args.crop}x{args.crop}, batch {args.batch})")


if __name__ == "__main__":
    main()
