"""GPU: the training comparison of `benchmarks.training` on a CUDA GPU (skips without one).

The same contenders as on the CPU (tuneboard's engine, the plain loop, the HF Trainer at its
best and with fixed-length padding), on the packaged MiniLM and on a BERT-base sized model
built from a config, bf16 autocast where the GPU has it (tuneboard's ``precision = "auto"``;
the plain loop and the Trainer do the same) and fused AdamW; samples/s and peak GPU memory of
each; and 2 and 4 tuneboard runs sharing the GPU (``slots_per_device``), their samples/s
together against one run's. A GPU steps far faster, so the default takes 20,000 SST-2 rows
and 3 rounds: per-step overhead (Python, logging, the store) matters more here than on the CPU.

On a machine without CUDA it keeps the figures already in ``results/gpu.json`` (measured on
a GPU earlier), or else writes that it was skipped; it exits 0 either way.

    python -m benchmarks.gpu                 # --rows 20000 --reps 3 --sizes minilm,base
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import Result, command_line, results_folder

GPU_CONTENDERS = (
    "tuneboard",
    "tuneboard_grouped",
    "plain",
    "trainer",
    "trainer_padded",
    "tuneboard_x2",
    "tuneboard_x4",
)


def cuda_device() -> str | None:
    """``cuda:0`` when torch sees a CUDA GPU, else None."""
    try:
        import torch
    except ImportError:
        return None
    return "cuda:0" if torch.cuda.is_available() else None


def _measured(path: Path) -> str | None:
    """When and where `path`'s GPU figures were measured, if it holds any (not a skip)."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if document.get("skipped") or not document.get("figures"):
        return None
    return f"{document.get('when')} on {document.get('machine', {}).get('gpu', 'a GPU')}"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the GPU comparison, or record that there is no GPU."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--sizes", default="minilm,base")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--no-wait", action="store_true", help="accepted; a GPU run never waits")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    device = cuda_device()
    if device is None:
        kept = _measured(results_folder(args.out) / "gpu.json")
        if kept and not args.smoke:
            print(f"no CUDA GPU here: kept the figures measured {kept}")
            return
        result = Result("gpu", command_line("benchmarks.gpu", argv or sys.argv[1:]))
        result.skipped = "no CUDA GPU visible to torch: nothing measured"
        print(f"skipped: {result.skipped}")
        print(f"wrote {result.save(results_folder(args.out))}")
        return
    from benchmarks import training

    forwarded = ["--name", "gpu", "--device", device, "--no-wait", "--verbose"]
    if args.smoke:
        forwarded += ["--sizes", "tiny", "--rows", "64", "--dev-rows", "64", "--reps-tiny", "1"]
        forwarded += ["--in-process", "--contenders", ",".join(GPU_CONTENDERS[:-1])]
    else:
        forwarded += ["--sizes", args.sizes, "--rows", str(args.rows), "--reps-minilm"]
        forwarded += [str(args.reps), "--contenders-minilm", ",".join(GPU_CONTENDERS)]
    if args.out:
        forwarded += ["--out", args.out]
    training.main(forwarded)


if __name__ == "__main__":
    main()
