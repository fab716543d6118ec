"""GPU: the causal-LM comparison of `benchmarks.causal_lm` on a ~0.5B decoder (skips without CUDA).

The same contenders (tuneboard's `finetune` on ``causal-lm``, the plain loop, TRL's
SFTTrainer with its defaults) on a GPT-2-style decoder of ~0.51B parameters built from a
config (24 layers, n_embd 1280; the MiniLM tokenizer), bf16 autocast (tuneboard's
``precision = "auto"``; the plain loop the same; SFTTrainer's default ``bf16 = True``),
packing off, or on with ``--packing`` (tuneboard's and SFTTrainer's; the plain loop has
none). Reports tokens/s and model FLOPs utilisation
= 6 x parameters x tokens/s / the GPU's dense bf16 peak (`causal_lm.PEAK_TFLOPS`).

On a machine without CUDA it keeps the figures already in ``results/causal_lm_gpu.json``
(measured on a GPU earlier), or else writes that it was skipped; it exits 0 either way.

    python -m benchmarks.causal_lm_gpu        # 0.5b, 4,000 pairs, 2 epochs, batch 32, 3 rounds
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from benchmarks.common import Result, command_line, results_folder
from benchmarks.gpu import _measured, cuda_device

NAME = "causal_lm_gpu"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the GPU comparison, or record that there is no GPU."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--size", default="0.5b")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--packing", action="store_true", help="tuneboard and SFTTrainer pack")
    parser.add_argument("--no-wait", action="store_true", help="accepted; a GPU run never waits")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)
    device = cuda_device()
    if device is None:
        kept = _measured(results_folder(args.out) / f"{NAME}.json")
        if kept and not args.smoke:
            print(f"no CUDA GPU here: kept the figures measured {kept}")
            return
        result = Result(NAME, command_line(f"benchmarks.{NAME}", given))
        result.skipped = "no CUDA GPU visible to torch: nothing measured"
        print(f"skipped: {result.skipped}")
        print(f"wrote {result.save(results_folder(args.out))}")
        return
    from benchmarks import causal_lm

    forwarded = ["--device", device, "--no-wait"]
    if args.smoke:
        forwarded += ["--smoke"]
    else:
        forwarded += ["--size", args.size, "--pairs", str(args.pairs), "--reps", str(args.reps)]
        forwarded += ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
        forwarded += ["--lr", str(args.lr)]
    if args.packing:
        forwarded += ["--packing"]
    if args.out:
        forwarded += ["--out", args.out]
    causal_lm.main(forwarded, name=NAME + ("_packed" if args.packing else ""))


if __name__ == "__main__":
    main()
