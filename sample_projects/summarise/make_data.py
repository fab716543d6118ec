"""Write the summarise sample project's data: customer messages and one-line ticket summaries.

A small summarisation task an encoder-decoder learns in seconds: a customer's message (about
a late delivery, a broken product, a refund ...) becomes the short summary a support team
files it under, e.g. "My kettle arrived with a cracked lid, can you send a new one?" becomes
"damaged kettle on arrival". Each kind of message has several wordings, with an order number, a
product name or a day slotted in; the summary names the kind, and the product where there is
one. The summaries are lowercase words so that they survive a round trip through the uncased
tokenizer of the `tiny` experiment (exact_match compares text), and four words or more, as
BLEU counts up to 4-grams. Seeded, so running it again writes the same files (tab-separated,
columns `source` and `target`, the `pairs` dataset's defaults):

    python make_data.py
"""

from __future__ import annotations

import random
from pathlib import Path

PRODUCTS = [
    "kettle",
    "toaster",
    "blender",
    "lamp",
    "backpack",
    "headphones",
    "grinder",
    "jacket",
    "mat",
    "umbrella",
]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "the weekend"]

# kind: (message wordings, summary); {order}, {product} and {day} are slots.
KINDS: dict[str, tuple[list[str], str]] = {
    "late": (
        [
            "Hello, I placed order {order} on {day} and it still hasn't arrived. Any news?",
            "My order {order} was due days ago. Where is it?",
            "Order #{order} is late and the tracking has not moved since {day}.",
            "I'm still waiting for order {order}, it should have come by {day}.",
        ],
        "order is delivered late",
    ),
    "damaged": (
        [
            "My {product} arrived broken, the box was crushed. Can you send a new one?",
            "The {product} I received on {day} is damaged and doesn't work.",
            "Hi, the {product} came with a cracked part. What can I do?",
            "I unpacked the {product} and it is scratched and bent.",
        ],
        "damaged {product} on arrival",
    ),
    "refund": (
        [
            "I'd like my money back for the {product}, I don't need it any more.",
            "Please refund the {product}, I sent it back on {day}.",
            "Can I return the {product} and get a refund?",
            "I want to return my {product}. How do I get a refund?",
        ],
        "refund request for the {product}",
    ),
    "wrong_item": (
        [
            "I ordered a {product} but order {order} contained something else.",
            "Order {order} has the wrong item in it, that's not a {product}!",
            "You sent me the wrong thing in order #{order}. I wanted a {product}.",
        ],
        "wrong item sent in order",
    ),
    "cancel": (
        [
            "Please cancel order {order}, I ordered it by mistake.",
            "I changed my mind, can you cancel order #{order} before it ships?",
            "Cancel my order {order} please, I found it cheaper elsewhere.",
        ],
        "customer wants to cancel order",
    ),
    "address": (
        [
            "I moved on {day}. Can you send order {order} to my new address?",
            "The address on order #{order} is wrong, please change it.",
            "Can I still change where order {order} is delivered?",
        ],
        "customer wants an address change",
    ),
    "password": (
        [
            "I can't log in, I forgot my password. Can you help?",
            "The password reset email never arrived since {day}.",
            "My account is locked after too many password attempts.",
            "How do I set a new password for my account?",
        ],
        "customer cannot reset the password",
    ),
    "warranty": (
        [
            "My {product} stopped working after a year. Is it still under warranty?",
            "Does the warranty cover the {product} if it breaks?",
            "The {product} broke on {day}, can I use the guarantee?",
        ],
        "warranty claim for the {product}",
    ),
}

COUNTS = {"train": 320, "validation": 40, "test": 40}


def pairs(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """`count` message/summary pairs, the kinds in turn, wordings and slots at random."""
    kinds = list(KINDS.values())
    out = []
    for i in range(count):
        messages, summary = kinds[i % len(kinds)]
        slots = {
            "order": str(rng.randint(1710, 2021)),
            "product": rng.choice(PRODUCTS),
            "day": rng.choice(DAYS),
        }
        out.append((rng.choice(messages).format(**slots), summary.format(**slots)))
    rng.shuffle(out)
    return out


def main() -> None:
    """Write data/train.tsv, data/validation.tsv and data/test.tsv."""
    rng = random.Random(99)
    rows = pairs(rng, sum(COUNTS.values()))
    folder = Path(__file__).parent / "data"
    folder.mkdir(exist_ok=True)
    start = 0
    for split, count in COUNTS.items():
        lines = ["source\ttarget\n", *(f"{s}\t{t}\n" for s, t in rows[start : start + count])]
        (folder / f"{split}.tsv").write_text("".join(lines), encoding="utf-8")
        print(f"{split}: {count} pairs")
        start += count


if __name__ == "__main__":
    main()
