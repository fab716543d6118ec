"""Weights are loaded from safetensors only, never unpickled: a folder holding only a pickle
(`pytorch_model.bin`) is refused with a clear error, before a run starts and again at load
time, and the pickle's code never runs. An audit of the source keeps it that way."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest

from tests.helpers import MINILM, TINY_BERT
from tuneboard.config import ModelSpec
from tuneboard.engine.models import check_safe_weights, load_model_and_tokenizer
from tuneboard.sdk.contracts import SEQUENCE_CLASSIFICATION
from tuneboard.sdk.errors import ConfigError

PACKAGE = Path(__file__).resolve().parents[2] / "tuneboard"


class _Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, canary: Path) -> None:
        self.canary = canary

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (Path.touch, (self.canary,))


@pytest.fixture
def pickled_model(tmp_path: Path) -> tuple[Path, Path]:
    """A model folder whose weights are only a malicious pickle; and the canary it would make."""
    from transformers import AutoConfig

    folder, canary = tmp_path / "pickled", tmp_path / "pwned"
    folder.mkdir()
    values = {k: v for k, v in TINY_BERT.items() if k != "model_type"}
    AutoConfig.for_model("bert", vocab_size=100, **values).save_pretrained(folder)
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Payload(canary)))
    return folder, canary


def test_a_pickle_only_folder_is_refused_before_the_run(pickled_model: tuple[Path, Path]) -> None:
    folder, canary = pickled_model
    with pytest.raises(ConfigError, match=r"holds weights only as pickle files \(pytorch_model"):
        check_safe_weights(str(folder), folder.parent)
    assert not canary.exists()


def test_loading_never_unpickles(pickled_model: tuple[Path, Path]) -> None:
    folder, canary = pickled_model
    spec = ModelSpec(source=str(folder), tokenizer=MINILM)
    with pytest.raises(ConfigError, match=r"no file named model\.safetensors"):
        load_model_and_tokenizer(spec, SEQUENCE_CLASSIFICATION, ["a", "b"], folder.parent)
    assert not canary.exists()


def test_a_safetensors_folder_passes(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.safetensors").write_bytes(b"")
    (tmp_path / "m" / "pytorch_model.bin").write_bytes(b"")  # ignored: safetensors wins
    check_safe_weights("./m", tmp_path)
    check_safe_weights("bert-base-uncased", tmp_path)  # a Hub id: transformers decides


def calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    """Every call in the tree, with the dotted name it calls (`torch.load`, `x.from_pretrained`)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            found.append((ast.unparse(node.func), node))
    return found


def test_audit_no_unpickling_anywhere_in_tuneboard() -> None:
    unsafe_modules = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}
    problems = []
    loads = 0
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(PACKAGE.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names]
                module = getattr(node, "module", None)
                for name in [*names, module or ""]:
                    if name.split(".")[0] in unsafe_modules:
                        problems.append(f"{where}: imports {name}")
        for name, call in calls(tree):
            keywords = {k.arg: ast.unparse(k.value) for k in call.keywords}
            if name.endswith("torch.load") and keywords.get("weights_only") != "True":
                problems.append(f"{where}:{call.lineno}: torch.load without weights_only=True")
            if keywords.get("trust_remote_code") not in (None, "False"):
                problems.append(f"{where}:{call.lineno}: trust_remote_code")
            if name.endswith("from_pretrained"):
                loads += 1
                if where.as_posix() != "tuneboard/engine/models.py":
                    problems.append(f"{where}:{call.lineno}: from_pretrained outside models.py")
    assert problems == []
    models = (PACKAGE / "engine" / "models.py").read_text(encoding="utf-8")
    # transformers' load of every model, and peft's of a kept adapter (safetensors checked);
    # `load_local` loads tokenizers and configs, never weights.
    assert loads == 3 and "use_safetensors=True" in models
    assert 'folder / "adapter_model.safetensors"' in models


def test_a_kept_adapter_in_a_pickle_file_is_refused(tmp_path: Path) -> None:
    """A checkpoint folder whose adapter is only an ``adapter_model.bin`` is not loaded."""
    from transformers import AutoModelForCausalLM

    from tuneboard.engine.models import _load

    folder = tmp_path / "adapter"
    (folder / "base").mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ConfigError, match=r"adapter_model\.safetensors"):
        _load(AutoModelForCausalLM, str(folder), tmp_path, "model", use_safetensors=True)
