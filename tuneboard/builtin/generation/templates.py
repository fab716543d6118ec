"""Turning generation examples into text segments that either train or only condition.

A causal LM learns a conversation rendered as text: the tokenizer's chat template when it has
one, else tuneboard's default template. Rendering gives *segments*, pieces of text in order,
each marked as trained on (the model's replies) or not (everything it is given). Pure Python:
no torch here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from tuneboard import ChatTurn, DataError, GenerationExample

Template = Literal["auto", "chat", "default", "plain"]

DEFAULT_ROLES = {"system": "System: ", "user": "User: ", "assistant": "Assistant: "}
"""The default template: each turn is ``<Role>: <content>`` on its own line, and a reply ends
with the end-of-sequence token; a prompt ends with ``Assistant: ``."""

Segment = tuple[str, bool]
"""A piece of text and whether the loss is taken on it."""


def uses_chat_template(tokenizer: Any, template: Template) -> bool:
    """Whether `template` means rendering with the tokenizer's own chat template."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if template == "chat" and not has_template:
        raise DataError('task template "chat": the tokenizer has no chat template')
    return template == "chat" or (template == "auto" and has_template)


def conversation(example: GenerationExample) -> tuple[ChatTurn, ...]:
    """The example as turns: its messages, or its prompt as a user turn and its response as
    the assistant's reply."""
    if example.messages is not None:
        return example.messages
    turns = [ChatTurn("user", example.prompt)]
    if example.response is not None:
        turns.append(ChatTurn("assistant", example.response))
    return tuple(turns)


def is_document(example: GenerationExample) -> bool:
    """A plain document (continued pretraining): no prompt, no conversation, all trained."""
    return example.messages is None and not example.prompt


def segments(
    example: GenerationExample, tokenizer: Any, template: Template, eos: str
) -> list[Segment]:
    """The example's text as segments: replies trained on, everything else not.

    `eos` (the end-of-sequence token's text) closes every reply the template does not close
    itself, so the model learns to stop.
    """
    if is_document(example):
        return [(example.response or "", True)]
    if template == "plain":
        if example.messages is not None:
            raise DataError('task template "plain" takes prompt/response examples, not messages')
        return [(example.prompt, False), ((example.response or "") + eos, True)]
    turns = conversation(example)
    if uses_chat_template(tokenizer, template):
        return _chat_segments(turns, tokenizer, eos)
    return _default_segments(turns, eos)


def prompt_text(example: GenerationExample, tokenizer: Any, template: Template) -> str:
    """What the model is given to generate the example's reply (ends where the reply starts)."""
    if template == "plain":
        return example.prompt
    turns = example.context()
    if uses_chat_template(tokenizer, template):
        return _render(tokenizer, turns, generation_prompt=True)
    return "".join(_default_turn(turn) for turn in turns) + DEFAULT_ROLES["assistant"]


def _default_turn(turn: ChatTurn) -> str:
    if turn.role not in DEFAULT_ROLES:
        raise DataError(f"unknown role {turn.role!r} (system, user or assistant)")
    return f"{DEFAULT_ROLES[turn.role]}{turn.content}\n"


def _default_segments(turns: Sequence[ChatTurn], eos: str) -> list[Segment]:
    out: list[Segment] = []
    for turn in turns:
        if turn.role == "assistant":
            out.append((DEFAULT_ROLES["assistant"], False))
            out.append((turn.content + eos, True))
            out.append(("\n", False))
        else:
            out.append((_default_turn(turn), False))
    return out


def _render(tokenizer: Any, turns: Sequence[ChatTurn], generation_prompt: bool) -> str:
    messages = [{"role": turn.role, "content": turn.content} for turn in turns]
    try:
        text = tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation_prompt
        )
    except Exception as error:  # templates raise on turns they do not accept (jinja errors)
        raise DataError(f"the chat template cannot render this conversation: {error}") from None
    return str(text)


def _chat_segments(turns: Sequence[ChatTurn], tokenizer: Any, eos: str) -> list[Segment]:
    """Render with the chat template; each reply is what rendering it adds after the prompt
    that asks for it."""
    out: list[Segment] = []
    done = ""
    for i, turn in enumerate(turns):
        if turn.role != "assistant":
            continue
        asked = _render(tokenizer, turns[:i], generation_prompt=True)
        answered = _render(tokenizer, turns[: i + 1], generation_prompt=False)
        if not asked.startswith(done) or not answered.startswith(asked):
            raise DataError(
                "the chat template does not render a conversation as a growing text; "
                'use template = "default"'
            )
        reply = answered[len(asked) :]
        if eos and eos not in reply:
            reply += eos
        out += [(asked[len(done) :], False), (reply, True)]
        done = answered
    return out
