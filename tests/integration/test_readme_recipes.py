"""The multi-step recipes of docs/configuration.md validate, and their data loads, in the sample projects."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import SAMPLES
from tests.integration.test_readme import code_block
from tuneboard.config import load_project
from tuneboard.engine.runner import prepare_run
from tuneboard.plugins import load_plugins

RECIPES = [
    # (first line of the block in docs/configuration.md, sample project, experiment, its stage plugins)
    ("# NER:", "ner", "ner", ["finetune", "evaluate", "predict"]),
    ("# Adversarial fine-tuning:", "sentiment", "fgm", ["finetune", "evaluate"]),
    ("# Masked-LM pretraining", "sentiment", "adapted", ["mlm", "finetune", "evaluate"]),
    ("# Augmented training data", "sentiment", "augmented", ["augment", "finetune", "evaluate"]),
]


@pytest.mark.parametrize(("first_line", "sample", "name", "plugins"), RECIPES)
def test_recipe_validates_and_its_data_loads(
    tmp_path: Path, first_line: str, sample: str, name: str, plugins: list[str]
) -> None:
    project_dir = tmp_path / sample
    shutil.copytree(SAMPLES / sample, project_dir, ignore=shutil.ignore_patterns(".tuneboard"))
    block = code_block("toml", first_line, "docs/configuration.md")
    (project_dir / "tuneboard.toml").write_text(f'[project]\nname = "{sample}"\n\n{block}')
    project = load_project(project_dir)
    registry = load_plugins(project.root)
    config = project.experiment(name, registry)
    assert [stage.plugin for stage in config.stages] == plugins
    prepared = prepare_run(project, config, registry)
    assert prepared.splits["train"] and prepared.labels
    for stage in config.stages:
        synonyms = getattr(stage.params, "synonyms", None)
        assert synonyms is None or (project_dir / synonyms).is_file()
