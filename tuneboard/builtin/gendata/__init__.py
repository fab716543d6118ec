"""Dataset plugins for generation tasks (``causal-lm``, ``seq2seq``): conversations and
instruction records (`chat`), source/target pairs (`pairs`) and plain-text corpora
(`corpus`). Each produces `GenerationExample`s; every bad record is named by file and line.
"""

from __future__ import annotations

from tuneboard.builtin.gendata.chat import ChatDataset
from tuneboard.builtin.gendata.corpus import CorpusDataset
from tuneboard.builtin.gendata.pairs import PairsDataset

__all__ = ["ChatDataset", "CorpusDataset", "PairsDataset"]
