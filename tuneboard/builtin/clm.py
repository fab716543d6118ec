"""The `clm` stage: continued causal-language-model pretraining of a decoder on a corpus.

The domain-corpus pretraining a multi-step pipeline starts with, for decoders: the model
learns to continue the documents of a text file (every token trained on), with the one
training loop and all its settings, and the adapted weights go on to the next stage. The
task's own splits are left as they were.
"""

from __future__ import annotations

from dataclasses import dataclass

from tuneboard import (
    CAUSAL_LM,
    ConfigError,
    DataError,
    GenerationExample,
    PipelineState,
    Stage,
    StageContext,
    TrainParams,
)
from tuneboard.builtin.gendata.corpus import CorpusFileParams, corpus_split


@dataclass
class ClmParams(CorpusFileParams, TrainParams):
    """The training loop's settings and the corpus file (`corpus` is required)."""


class Clm(Stage[ClmParams]):
    """Continue pretraining a decoder on the documents of a corpus file."""

    name = "clm"
    description = "Continue pretraining a decoder (causal LM) on a corpus file of documents"
    Params = ClmParams

    def run(self, ctx: StageContext, state: PipelineState) -> PipelineState:
        """Train on the corpus; hand the adapted model on with the task's own splits."""
        p = self.params
        if ctx.task is None or ctx.task.name != CAUSAL_LM:
            raise ConfigError('clm: continues pretraining a decoder: needs task = "causal-lm"')
        if not p.corpus:
            raise DataError("clm: key 'corpus': name the text file of documents to train on")
        train, held_out = corpus_split(ctx, p)
        corpus = PipelineState(
            task=state.task,
            labels=state.labels,
            splits={
                "train": [GenerationExample(response=doc) for doc in train],
                "validation": [GenerationExample(response=doc) for doc in held_out],
            },
            model=state.model,
            tokenizer=state.tokenizer,
        )
        ctx.event(f"continued pretraining on {len(train)} documents ({len(held_out)} held out)")
        ctx.training.fit(corpus, p)
        state.model = corpus.model
        state.best_checkpoint = corpus.best_checkpoint
        return state
