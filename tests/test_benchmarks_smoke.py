"""Every benchmark script runs at a tiny size and BENCHMARKS.md renders (no timing is asserted).

Marked `benchmarks`: `pytest -m benchmarks` runs only these; `make test` and CI run them with
everything else. `python -m benchmarks.run_all --quick` is what a user types; it is run here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from benchmarks import common, run_all

pytestmark = pytest.mark.benchmarks


def test_run_all_quick_runs_every_script_and_renders(tmp_path: Path) -> None:
    output = tmp_path / "BENCHMARKS.md"
    status = run_all.main(["--quick", "--out", str(tmp_path), "--output", str(output)])
    assert status == 0
    for name in run_all.SCRIPTS:
        document = json.loads((tmp_path / f"{name}.json").read_text())
        assert document["machine"]["nproc"] == os.cpu_count()
        assert document["command"] == f"python -m benchmarks.{name} --smoke"
        assert document["figures"] or document["skipped"], name
        assert not (document["skipped"] or "").startswith("FAILED"), document["skipped"]
    text = output.read_text()
    for title in run_all.TITLES.values():
        assert f"## {title}" in text
    assert "series()" in text and "tuneboard / plain loop" in text
    overall = json.loads((tmp_path / "run_all.json").read_text())
    assert overall["failed"] == [] and overall["scripts"] == list(run_all.SCRIPTS)


def test_a_failing_script_leaves_a_document_saying_so(tmp_path: Path) -> None:
    (tmp_path / "gpu.json").write_text("{}")  # an old result must not survive the failure
    failed = run_all.run(["gpu"], ["--no-such-option"], tmp_path)  # argparse exits with 2
    assert failed == ["gpu"]
    document = json.loads((tmp_path / "gpu.json").read_text())
    assert document["skipped"].startswith("FAILED (exit status 2)")
    assert "*Not measured: FAILED" in run_all.render(tmp_path, None)


def test_command_line_leaves_out_the_results_folder() -> None:
    line = common.command_line("benchmarks.queries", ["--smoke", "--out", "/tmp/x", "--out=/y"])
    assert line == "python -m benchmarks.queries --smoke"


def test_causal_lm_plain_loop_trains_on_the_tokens_tuneboard_trains_on() -> None:
    # The comparison is fair only if the plain loop's ids and loss labels are tuneboard's.
    from benchmarks import causal_lm
    from tuneboard import GenerationExample
    from tuneboard.builtin.generation.tasks import CausalLM, CausalLMParams

    pairs = causal_lm.make_pairs(40, seed=3)
    tokenizer = causal_lm.load_tokenizer()
    rows = causal_lm.encode(tokenizer, pairs, 128)
    task = CausalLM(CausalLMParams(template="default"))
    task.prepare(tokenizer, {})
    features = task.encode([GenerationExample(p, r) for p, r in pairs], tokenizer, 128)
    assert len(rows) == len(features) == 40
    for i, (ids, labels) in enumerate(rows):
        width = int(features.lengths[i])
        assert ids.tolist() == features.input_ids[i, :width].tolist()
        assert labels.tolist() == features.labels[i, :width].tolist()
        # the response and the end of sequence carry the loss, the prompt does not
        assert labels.tolist()[-1] == tokenizer.eos_token_id and labels.tolist()[0] == -100
    prompt, response = pairs[0]
    assert tokenizer.decode(rows[0][0][: len(causal_lm.prompt_ids(tokenizer, prompt))]) == (
        tokenizer.decode(task.prompt_ids(GenerationExample(prompt, response), tokenizer, 128))
    )


def test_instruction_pairs_are_deterministic_and_distinct() -> None:
    from benchmarks.instructions import make_pairs, split_pairs

    pairs = make_pairs(400, seed=13)
    assert pairs == make_pairs(400, seed=13) and pairs != make_pairs(400, seed=14)
    assert len({p for p, _ in pairs}) == 400
    splits = split_pairs(pairs, 50, 50)
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [300, 50, 50]


def test_gpu_quick_runs_every_part_and_skips_what_needs_a_gpu(tmp_path: Path) -> None:
    # What a user without a GPU types to check the GPU benchmark before a GPU is lent.
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu", "--quick", "--out", str(tmp_path)],
        cwd=common.REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    document = json.loads((tmp_path / "gpu.json").read_text())
    figures = {f["name"]: f for f in document["figures"]}
    for batch in (16, 64):
        for name in (
            "tuneboard defaults / Trainer defaults, samples/s",
            "tuneboard / best plain loop, time",
        ):
            assert figures[f"tiny b{batch}: {name}"]["value"] > 0
    assert figures["tiny b16: 2 runs sharing the device / 1 run, samples/s"]["value"] > 0
    assert figures["tiny: tuneboard, tokens/s"]["value"] > 0
    if document["details"]["device"]["device"] == "cpu":
        mfu = figures["tiny: tuneboard, model FLOPs utilisation (bf16)"]
        assert mfu["value"] is None and mfu["note"] == "not measured: no CUDA GPU"
        for n in (2, 4, 8):
            scaling = figures[f"gpus = {n}: scaling efficiency"]
            assert scaling["value"] is None and scaling["note"].startswith(
                f"not measured: needs {n}"
            )
    assert not any(f["target"] for f in document["figures"])  # tiny sizes check no target
    assert document["details"]["failed"] == []
