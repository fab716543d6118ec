"""Where a run's model and tokenizer come from, and loading them for a task.

`transformers` is imported inside the functions that need it, so importing this module is cheap.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

from tuneboard.config import ModelSpec
from tuneboard.sdk.contracts import SEQUENCE_CLASSIFICATION, TOKEN_CLASSIFICATION
from tuneboard.sdk.errors import ConfigError, shorten
from tuneboard.sdk.tasks import Task

PACKAGE_PREFIX = "package:"

# Weight files that are Python pickles: loading one can run arbitrary code.
_PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.pickle")

_PATH_PREFIXES = ("./", "../", ".\\", "..\\", "/", "~")

# transformers resolves its names lazily, and two threads resolving them for the first time at
# once can fail ("cannot import name 'AutoConfig' from 'transformers'", seen with 4 runs
# starting together on a GPU): runs load their models one at a time.
MODEL_LOAD_LOCK = threading.Lock()


def resolve_model_source(source: str, project_dir: Path) -> str:
    """Turn a model `source` into what `from_pretrained` takes.

    ``package:MODULE/SUBPATH`` becomes the folder inside the installed package, a path that
    exists (relative to `project_dir` or absolute) becomes an absolute path, and anything
    else is returned unchanged as a Hugging Face id. Raise `ConfigError` naming `source` for
    a missing package, a missing folder inside it, or a path that looks local but is missing.
    """
    if source.startswith(PACKAGE_PREFIX):
        return str(_package_folder(source))
    candidate = (project_dir / Path(source).expanduser()).resolve()
    if candidate.exists():
        return str(candidate)
    parts = Path(source).parts
    # `models/mine` is a path, not a Hub id, when the project has a `models` folder.
    in_project = len(parts) > 1 and (project_dir / parts[0]).is_dir()
    if source.startswith(_PATH_PREFIXES) or Path(source).is_absolute() or in_project:
        raise ConfigError(f"model {source!r}: no such folder ({candidate})")
    return source


def check_safe_weights(source: str, project_dir: Path) -> None:
    """Raise `ConfigError` when a local model folder holds weights only as pickle files.

    tuneboard loads model weights only from safetensors files (`use_safetensors=True`), so
    such a folder is refused before a run starts, with a message that says why.
    """
    location = Path(resolve_model_source(source, project_dir))
    if not location.is_absolute() or not location.is_dir():
        return  # a Hugging Face id: from_pretrained refuses pickles itself
    if any(location.glob("*.safetensors")):
        return
    pickles = sorted(p.name for pattern in _PICKLE_WEIGHTS for p in location.glob(pattern))
    if pickles:
        raise ConfigError(
            f"model {source!r}: {location} holds weights only as pickle files "
            f"({', '.join(pickles[:3])}); tuneboard loads weights only from safetensors "
            "files, since unpickling can run code: save the model with save_pretrained() "
            "from a trusted environment to get model.safetensors"
        )


def _package_folder(source: str) -> Path:
    module, _, subpath = source[len(PACKAGE_PREFIX) :].partition("/")
    if not module:
        raise ConfigError(f"model {source!r}: expected package:MODULE/SUBPATH")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise ConfigError(f"model {source!r}: Python package {module!r} is not installed")
    if spec.submodule_search_locations:
        base = Path(next(iter(spec.submodule_search_locations)))
    elif spec.origin:
        base = Path(spec.origin).parent
    else:
        raise ConfigError(f"model {source!r}: package {module!r} has no folder on disk")
    folder = base / subpath if subpath else base
    if not folder.exists():
        raise ConfigError(f"model {source!r}: no {subpath!r} inside package {module!r} ({base})")
    return folder


def quiet_transformers() -> None:
    """Silence transformers' load reports, warnings and progress bars."""
    from transformers.utils import logging

    hf_logging: Any = logging  # its functions are untyped
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def load_model_and_tokenizer(
    spec: ModelSpec,
    task: str,
    labels: list[str],
    project_dir: Path,
    task_plugin: Task[Any] | None = None,
    *,
    quantize_on: str | None = None,
) -> tuple[Any, Any]:
    """Load (or build from `spec.config`) the model for `task` with a head for `labels`.

    Return `(model, tokenizer)`. A pretrained model gets a freshly initialised head when its
    own head has another size. `task_plugin` (for tasks other than classification) picks the
    model class and prepares the tokenizer. `quantize_on` (a CUDA device) loads the model
    4-bit onto that device, for QLoRA. A folder holding a kept adapter (a prompt-learning
    stage's checkpoint) loads as the `PeftModel` it was. Errors are one-line `ConfigError`s
    naming the model value.
    """
    with MODEL_LOAD_LOCK:
        return _load_model_and_tokenizer(spec, task, labels, project_dir, task_plugin, quantize_on)


def _load_model_and_tokenizer(
    spec: ModelSpec,
    task: str,
    labels: list[str],
    project_dir: Path,
    task_plugin: Task[Any] | None,
    quantize_on: str | None = None,
) -> tuple[Any, Any]:
    quiet_transformers()
    from transformers import AutoConfig, AutoTokenizer

    model_cls = task_plugin.model_class() if task_plugin is not None else model_class(task)
    labelling = label_kwargs(task, labels) if task_plugin is None else {}

    tokenizer_source = spec.tokenizer or spec.source
    if tokenizer_source is None:
        raise ConfigError("model: set `source` (or `tokenizer` when `config` is given)")
    tokenizer = _load(AutoTokenizer, tokenizer_source, project_dir, "tokenizer")
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token

    values = dict(spec.config or {})
    if task_plugin is not None:
        task_plugin.prepare(tokenizer, values)
    if spec.config is not None:
        model_type = values.pop("model_type", None)
        if not isinstance(model_type, str):
            raise ConfigError('model.config: needs a `model_type` (e.g. "bert")')
        values.setdefault("vocab_size", len(tokenizer))
        values.setdefault("pad_token_id", tokenizer.pad_token_id)
        try:
            config = AutoConfig.for_model(model_type, **values, **labelling)
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"model.config: {_first_line(exc)}") from None
        model = model_cls.from_config(config)
        if quantize_on is not None:
            from tuneboard.engine.quantization import reload_4bit

            model = reload_4bit(model, quantize_on)
    else:
        assert spec.source is not None
        if quantize_on is not None:
            from tuneboard.engine.quantization import load_kwargs

            labelling.update(load_kwargs(quantize_on))
        model = _load(
            model_cls,
            spec.source,
            project_dir,
            "model",
            use_safetensors=True,  # never unpickle weights: a pickle can run any code
            ignore_mismatched_sizes=True,
            **labelling,
        )
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def label_kwargs(task: str, labels: list[str]) -> dict[str, Any]:
    """The config keys that give a classification model a head for `labels`."""
    kwargs: dict[str, Any] = {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
    }
    if task == SEQUENCE_CLASSIFICATION:
        # With one label transformers would silently switch to regression.
        kwargs["problem_type"] = "single_label_classification"
    return kwargs


def model_class(task: str) -> Any:
    """The transformers auto class of a classification `task`."""
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    if task == SEQUENCE_CLASSIFICATION:
        return AutoModelForSequenceClassification
    if task == TOKEN_CLASSIFICATION:
        return AutoModelForTokenClassification
    raise ConfigError(f"task {task!r} is not supported by the built-in model loader")


def _load(factory: Any, source: str, project_dir: Path, what: str, **kwargs: Any) -> Any:
    from tuneboard.engine.adapters import is_adapter_folder

    location = resolve_model_source(source, project_dir)
    local = Path(location).is_absolute()
    # A cached Hugging Face id loads from the cache without asking the Hub (which, without
    # network, retries for half a minute); `preflight` refused the ids in neither place.
    offline = local or hub_cache_folder(location) is not None
    try:
        if what == "model" and local and is_adapter_folder(Path(location)):
            return _load_adapter_folder(factory, Path(location), **kwargs)
        # The one place transformers loads weights; model loads pass use_safetensors=True.
        return factory.from_pretrained(location, local_files_only=offline, **kwargs)
    except (OSError, ValueError) as exc:
        where = "local folder" if local else "Hugging Face id (not a local folder)"
        raise ConfigError(f"{what} {source!r}: cannot load {where}: {_first_line(exc)}") from None


def _load_adapter_folder(factory: Any, folder: Path, **kwargs: Any) -> Any:
    """A kept adapter's checkpoint (see `tuneboard.engine.adapters.save_model`): the base in
    ``base/``, loaded like any model, then the adapter on it (frozen: peft loads
    prompt-learning adapters only so; `add_adapters` makes them trainable again). Only a
    safetensors adapter is loaded: peft would unpickle an ``adapter_model.bin``."""
    from peft import PeftModel

    from tuneboard.engine.adapters import BASE_FOLDER

    if not (folder / "adapter_model.safetensors").is_file():
        raise ConfigError(
            f"model {str(folder)!r}: the adapter is not in adapter_model.safetensors; "
            "tuneboard loads weights only from safetensors files, since unpickling can run code"
        )
    base = _load(factory, str(folder / BASE_FOLDER), folder, "model", **kwargs)
    return PeftModel.from_pretrained(base, folder)


def reload_saved(model_cls: Any, folder: Path, **kwargs: Any) -> Any:
    """A model tuneboard just saved to `folder`, loaded again with `kwargs` (e.g. 4-bit)."""
    return _load(model_cls, str(folder), folder, "model", use_safetensors=True, **kwargs)


def load_local(factory: Any, location: str) -> Any:
    """A tokenizer or a config (`factory`: AutoTokenizer, AutoConfig) from a folder or the
    Hugging Face cache, never asking the Hub. It loads no weights."""
    return factory.from_pretrained(location, local_files_only=True)


def hub_cache_folder(repo_id: str) -> str | None:
    """The local Hugging Face cache's folder of model `repo_id`, or None when it is not there
    (or `repo_id` is no valid id). Never asks the Hub."""
    from huggingface_hub import snapshot_download

    try:
        return str(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached (LocalEntryNotFoundError), or not an id at all
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return shorten(text.splitlines()[0]) if text else type(exc).__name__
