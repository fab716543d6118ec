"""Write the support sample project's data: customer-service questions and the answers to learn.

Each intent (order status, refunds, shipping times, password reset, opening hours ...) has
several phrasings of the question and one answer, some with an order number or a product
name slotted in. The answers are lowercase and use only letters, digits, spaces and . , ! ?
so that they survive a round trip through the uncased tokenizer of the `tiny` experiment
(exact_match compares the generated text with the answer, character for character), and
order numbers are four digits that this tokenizer holds as one token each, so that a tiny
model learns to copy them in a few epochs. The questions keep their natural case and
punctuation. Seeded, so running it again writes the same files (prompt/response records, the
`chat` dataset's format):

    python make_data.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

PRODUCTS = [
    "kettle",
    "toaster",
    "blender",
    "desk lamp",
    "backpack",
    "headphones",
    "coffee grinder",
    "rain jacket",
    "yoga mat",
    "phone case",
]

# intent: (question phrasings, answer); {order} and {product} are slots.
INTENTS: dict[str, tuple[list[str], str]] = {
    "order_status": (
        [
            "Where is my order {order}?",
            "Has order {order} shipped yet?",
            "Can you check the status of order {order}?",
            "I haven't received order {order}, where is it?",
            "What's happening with my order #{order}?",
        ],
        "order {order} arrives in three days.",
    ),
    "cancel_order": (
        [
            "Please cancel order {order}.",
            "I want to cancel my order {order}.",
            "How do I cancel order #{order}?",
            "Can you stop order {order}? I ordered by mistake.",
        ],
        "order {order} is cancelled.",
    ),
    "change_address": (
        [
            "Can I change the delivery address for order {order}?",
            "I moved, please update the address on order {order}.",
            "Wrong address on order #{order}, can you fix it?",
        ],
        "you can change it until order {order} ships.",
    ),
    "refund": (
        [
            "I want a refund for my {product}.",
            "The {product} I bought is broken, can I get my money back?",
            "How do I return the {product}?",
            "Can I send back the {product} for a refund?",
            "My {product} doesn't work. Refund please!",
        ],
        "return the {product} within 30 days for a refund.",
    ),
    "stock": (
        [
            "Is the {product} in stock?",
            "Do you have the {product} available?",
            "When will the {product} be back in stock?",
            "Can I still buy the {product}?",
        ],
        "the {product} is in stock.",
    ),
    "warranty": (
        [
            "What warranty does the {product} have?",
            "Is the {product} covered by a guarantee?",
            "How long is the warranty on the {product}?",
        ],
        "the {product} has a two year warranty.",
    ),
    "shipping_time": (
        [
            "How long does shipping take?",
            "When will my package arrive if I order today?",
            "What are your delivery times?",
            "How fast is delivery?",
            "How many days does standard shipping take?",
        ],
        "delivery takes three to five days.",
    ),
    "international": (
        [
            "Do you ship abroad?",
            "Can you deliver to another country?",
            "Do you offer international shipping?",
            "Will you send my order outside the country?",
        ],
        "we ship to every country in europe.",
    ),
    "password_reset": (
        [
            "I forgot my password.",
            "How do I reset my password?",
            "I can't log in to my account.",
            "My password doesn't work anymore, help!",
            "How can I change my password?",
        ],
        "use forgot password on the sign in page.",
    ),
    "opening_hours": (
        [
            "What are your opening hours?",
            "When is customer service open?",
            "Are you open on weekends?",
            "What time can I call you?",
            "When can I reach support?",
        ],
        "we are open monday to friday, 9am to 6pm.",
    ),
    "payment": (
        [
            "Which payment methods do you accept?",
            "Can I pay with PayPal?",
            "Do you take credit cards?",
            "How can I pay for my order?",
        ],
        "we accept cards and paypal.",
    ),
    "human": (
        [
            "Can I talk to a real person?",
            "I want to speak to an agent.",
            "How do I contact a human?",
            "Is there a phone number I can call?",
        ],
        "call us on 0800 123 456.",
    ),
}

PER_INTENT = 30
SPLITS = {"train": 0.7, "validation": 0.15, "test": 0.15}


def examples(rng: random.Random) -> list[dict[str, str]]:
    """`PER_INTENT` question/answer pairs per intent, slots filled at random."""
    out = []
    for questions, answer in INTENTS.values():
        for i in range(PER_INTENT):
            slots = {"order": str(rng.randint(1710, 2021)), "product": rng.choice(PRODUCTS)}
            question = questions[i % len(questions)]
            out.append({"prompt": question.format(**slots), "response": answer.format(**slots)})
    rng.shuffle(out)
    return out


def main() -> None:
    """Write data/train.jsonl, data/validation.jsonl and data/test.jsonl."""
    rng = random.Random(2024)
    rows = examples(rng)
    folder = Path(__file__).parent / "data"
    folder.mkdir(exist_ok=True)
    start = 0
    for split, share in SPLITS.items():
        end = len(rows) if split == "test" else start + round(share * len(rows))
        lines = (json.dumps(row, ensure_ascii=False) + "\n" for row in rows[start:end])
        (folder / f"{split}.jsonl").write_text("".join(lines), encoding="utf-8")
        print(f"{split}: {end - start} examples")
        start = end


if __name__ == "__main__":
    main()
