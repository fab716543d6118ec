"""The `chat` dataset plugin: JSON-lines files of prompt/response pairs or conversations.

Four layouts, named by `format` or told from each file's first record (`auto`):
``prompt_response`` (a prompt and a response), ``messages`` (a list of role/content turns),
``alpaca`` (instruction, optional input, output) and ``sharegpt`` (a list of from/value turns).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

from tuneboard import ChatTurn, DataError, Dataset, DatasetContext, GenerationExample, Splits, param
from tuneboard.builtin.gendata.common import check_generation_task, load_splits
from tuneboard.builtin.textfiles import jsonl_objects, read_text

Format = Literal["auto", "prompt_response", "messages", "alpaca", "sharegpt"]
ROLES = ("system", "user", "assistant")


@dataclass
class ChatParams:
    """Where the files are, how their records are laid out, and which keys hold what."""

    train: str = param(help="JSON-lines file with the training records (relative to the project)")
    validation: str | None = param(None, help="JSON-lines file with the validation records")
    test: str | None = param(None, help="JSON-lines file with the test records")
    format: Format = param(
        "auto",
        help="Record layout: prompt_response, messages, alpaca or sharegpt; auto tells it "
        "from each file's first record",
    )
    prompt_key: str = param("prompt", help="prompt_response: key of the prompt")
    response_key: str = param("response", help="prompt_response: key of the response")
    messages_key: str = param("messages", help="messages: key of the list of turns")
    role_key: str = param("role", help="messages: key of a turn's role")
    content_key: str = param("content", help="messages: key of a turn's text")
    instruction_key: str = param("instruction", help="alpaca: key of the instruction")
    input_key: str = param("input", help="alpaca: key of the optional input (added to the prompt)")
    output_key: str = param("output", help="alpaca: key of the answer")
    conversations_key: str = param("conversations", help="sharegpt: key of the list of turns")
    from_key: str = param("from", help="sharegpt: key of a turn's speaker")
    value_key: str = param("value", help="sharegpt: key of a turn's text")
    roles: dict[str, str] = param(
        {"human": "user", "gpt": "assistant"},
        help="Role names in the files mapped to system, user or assistant (messages and "
        "sharegpt); those three names are always accepted",
    )
    encoding: str = param("utf-8", help="Text encoding of the files")


@dataclass(frozen=True)
class _Record:
    """One JSON object of a file, with what it takes to name it in an error."""

    path: Path
    line: int
    values: dict[str, Any]

    def fail(self, key: str, problem: str) -> NoReturn:
        """Raise a DataError naming the file, the line and the key."""
        raise DataError(f"{self.path}: line {self.line}: key {key!r}: {problem}")

    def get(self, key: str) -> Any:
        """The value under `key`; DataError when the record lacks it."""
        if key not in self.values:
            self.fail(key, f"missing (keys found: {', '.join(self.values) or 'none'})")
        return self.values[key]

    def text(self, key: str, *, optional: bool = False, empty: bool = True) -> str:
        """The text under `key` ("" when `optional` and absent or null)."""
        value = self.values.get(key) if optional else self.get(key)
        if value is None:
            if optional:
                return ""
            self.fail(key, "no value (null)")
        if not isinstance(value, str):
            self.fail(key, f"must be text, got {_short(value)}")
        if not empty and not value.strip():
            self.fail(key, "empty")
        return value


class ChatDataset(Dataset[ChatParams]):
    """JSON-lines prompt/response, messages, Alpaca or ShareGPT records -> GenerationExample."""

    name = "chat"
    description = "JSON-lines records for generation: prompt/response, messages, Alpaca or ShareGPT"
    Params = ChatParams

    def load(self, ctx: DatasetContext) -> Splits:
        """Read each named file into a split of `GenerationExample`s."""
        check_generation_task(self.name, ctx.task)
        p = self.params
        for name, role in p.roles.items():
            if role not in ROLES:
                raise DataError(
                    f"dataset 'chat': key 'roles': {name!r} maps to {role!r}, which is not "
                    "system, user or assistant"
                )
        files = {"train": p.train, "validation": p.validation, "test": p.test}
        return load_splits(ctx, files, self._examples)

    def _examples(self, path: Path, key: str) -> list[GenerationExample]:
        readers: dict[str, Callable[[_Record], GenerationExample]] = {
            "prompt_response": self._prompt_response,
            "alpaca": self._alpaca,
            "messages": self._messages,
            "sharegpt": self._sharegpt,
        }
        fmt = self.params.format
        examples: list[GenerationExample] = []
        for line, values in jsonl_objects(path, read_text(path, self.params.encoding)):
            record = _Record(path, line, values)
            if fmt == "auto":
                fmt = self._detect(record)
            examples.append(readers[fmt](record))
        return examples

    def _detect(self, record: _Record) -> Format:
        p = self.params
        if p.messages_key in record.values:
            return "messages"
        if p.conversations_key in record.values:
            return "sharegpt"
        if p.instruction_key in record.values and p.output_key in record.values:
            return "alpaca"
        if p.prompt_key in record.values:
            return "prompt_response"
        have = ", ".join(record.values) or "none"
        raise DataError(
            f"{record.path}: line {record.line}: cannot tell the format: no key "
            f"{p.prompt_key!r}, {p.messages_key!r}, {p.conversations_key!r} or "
            f"{p.instruction_key!r} with {p.output_key!r} (keys found: {have}); "
            "set the dataset's format or its keys"
        )

    def _prompt_response(self, record: _Record) -> GenerationExample:
        p = self.params
        return GenerationExample(
            prompt=record.text(p.prompt_key),
            response=record.text(p.response_key, empty=False),
        )

    def _alpaca(self, record: _Record) -> GenerationExample:
        p = self.params
        instruction = record.text(p.instruction_key, empty=False)
        extra = record.text(p.input_key, optional=True)
        prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        return GenerationExample(prompt=prompt, response=record.text(p.output_key, empty=False))

    def _messages(self, record: _Record) -> GenerationExample:
        p = self.params
        return self._conversation(record, p.messages_key, p.role_key, p.content_key)

    def _sharegpt(self, record: _Record) -> GenerationExample:
        p = self.params
        return self._conversation(record, p.conversations_key, p.from_key, p.value_key)

    def _conversation(
        self, record: _Record, key: str, role_key: str, content_key: str
    ) -> GenerationExample:
        turns = record.get(key)
        if not isinstance(turns, list) or not turns:
            record.fail(key, f"must be a non-empty list of turns, got {_short(turns)}")
        messages = tuple(
            self._turn(record, key, number, turn, role_key, content_key)
            for number, turn in enumerate(turns, start=1)
        )
        if not any(t.role == "assistant" and t.content.strip() for t in messages):
            record.fail(key, "no assistant turn with content: nothing to learn from")
        return GenerationExample(messages=messages)

    def _turn(
        self, record: _Record, key: str, number: int, turn: Any, role_key: str, content_key: str
    ) -> ChatTurn:
        if not isinstance(turn, dict):
            record.fail(key, f"turn {number} must be an object, got {_short(turn)}")
        role, content = turn.get(role_key), turn.get(content_key)
        if not isinstance(role, str):
            record.fail(key, f"turn {number}: {role_key!r} must be text, got {_short(role)}")
        mapped = self.params.roles.get(role, role)
        if mapped not in ROLES:
            record.fail(
                key,
                f"turn {number}: role {role!r} is not system, user or assistant "
                "(map it with the dataset's roles key)",
            )
        if not isinstance(content, str):
            record.fail(key, f"turn {number}: {content_key!r} must be text, got {_short(content)}")
        return ChatTurn(role=mapped, content=content)


def _short(value: Any) -> str:
    """`value` for an error message, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
