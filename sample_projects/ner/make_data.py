"""Write the NER sample project's data: short news-style sentences tagged PER/ORG/LOC/MISC.

The sentences come from templates and name lists written for this project (the people and
organisations are made up). BIO tags, CoNLL format: a token and its tag per line, a blank
line between sentences. Seeded, so running it again writes the same files:

    python make_data.py
"""

from __future__ import annotations

import random
from pathlib import Path

PEOPLE = [
    "Maria Okafor",
    "Tomas Lindqvist",
    "Aiko Tanaka",
    "Jonas Berg",
    "Leila Haddad",
    "Priya Raman",
    "Samuel Osei",
    "Elena Petrova",
    "Diego Alvarez",
    "Nora Kelly",
    "Hugo Marchand",
    "Ingrid Solberg",
    "Kwame Mensah",
    "Lucia Bianchi",
    "Omar Farouk",
    "Grace Whitfield",
    "Mateo Ruiz",
    "Anya Volkova",
    "Felix Hartmann",
    "Zara Ahmed",
    "Okonkwo",
    "Lindqvist",
    "Tanaka",
    "Petrova",
    "Alvarez",
    "Mensah",
]
ORGS = [
    "Northwind Bank",
    "Helios Motors",
    "Riverside University",
    "Blue Harbor Press",
    "Kestrel Airlines",
    "Granite Foods",
    "Orbital Systems",
    "the Meridian Trust",
    "Silverline Rail",
    "Copperleaf Studios",
    "Atlas Insurance",
    "Vantage Labs",
    "the Coastal Health Service",
    "Redwood Energy",
    "Lumen Pharmaceuticals",
    "Starling FC",
    "the Farmers Union",
    "Ironbridge Council",
]
PLACES = [
    "Lisbon",
    "Nairobi",
    "Oslo",
    "Kyoto",
    "Toronto",
    "Valparaiso",
    "Marseille",
    "Accra",
    "Lake Orrin",
    "Port Emery",
    "the Sarn Valley",
    "New Harwick",
    "Brightwater",
    "Dunmore",
    "Cape Verlin",
    "Mount Tessel",
    "Eastfield",
    "the Kalver Islands",
    "Rosetown",
    "Glenmoor",
]
MISC = [
    "Norwegian",
    "Brazilian",
    "Japanese",
    "Kenyan",
    "French",
    "Canadian",
    "Ghanaian",
    "Winter Games",
    "Harvest Festival",
    "Aurora X2",
    "Nobel Prize",
    "World Cup",
    "Open Water Classic",
    "Spanish",
    "Italian",
    "Golden Reel Award",
    "Tour of Dunmore",
]
TEMPLATES = [
    "{PER} joined {ORG} in {LOC} last spring .",
    "{ORG} opened a new office in {LOC} on Monday .",
    "{PER} said the talks in {LOC} went well .",
    "The {MISC} delegation arrived in {LOC} late on Tuesday .",
    "{PER} , a {MISC} painter , lives in {LOC} .",
    "Shares of {ORG} fell sharply after the report .",
    "{PER} won the {MISC} for the second time .",
    "{ORG} and {ORG} agreed to merge next year .",
    "Heavy rain closed roads around {LOC} .",
    "{PER} met {PER} at the summit in {LOC} .",
    "The {MISC} is held in {LOC} every August .",
    "{ORG} hired {PER} as its new chief executive .",
    "Fans of {ORG} celebrated in the streets of {LOC} .",
    "{PER} scored twice as {ORG} beat {ORG} .",
    "A {MISC} court fined {ORG} for late payments .",
    "Flights from {LOC} to {LOC} were cancelled .",
    "{PER} will lead the {MISC} team at the {MISC} .",
    "{ORG} reported higher profits for the quarter .",
    "Police in {LOC} are searching for a missing hiker .",
    "{PER} told reporters that {ORG} would appeal .",
    "The new bridge links {LOC} with {LOC} .",
    "{PER} , who grew up in {LOC} , now coaches {ORG} .",
    "{ORG} plans to build a factory near {LOC} .",
    "Tickets for the {MISC} sold out in an hour .",
    "{PER} thanked the voters of {LOC} .",
    "The {MISC} film opened in {LOC} to good reviews .",
    "{ORG} recalled thousands of {MISC} phones .",
    "{PER} resigned from {ORG} on Friday .",
    "Snow is expected in {LOC} this weekend .",
    "{PER} and {PER} wrote the report for {ORG} .",
    "Prices rose again last month , the survey said .",
    "The meeting was moved to next week .",
    "Officials said the road would reopen soon .",
    "The team trained hard before the final .",
    "Most shops stayed closed during the strike .",
    "{PER} visited {LOC} to open the {MISC} .",
    "Workers at {ORG} voted to strike .",
    "The {MISC} minister flew to {LOC} for talks .",
    "{ORG} signed {PER} on a three year deal .",
    "Crowds gathered in {LOC} for the {MISC} .",
]
TAGS = {"PER": PEOPLE, "ORG": ORGS, "LOC": PLACES, "MISC": MISC}
SIZES = {"train": 320, "validation": 80, "test": 80}


def tagged(name: str, kind: str) -> list[tuple[str, str]]:
    """A name's tokens with BIO tags; a leading lower-case "the" stays outside the entity."""
    words = name.split()
    out: list[tuple[str, str]] = []
    if words[0] == "the":
        out.append(("the", "O"))
        words = words[1:]
    out += [(word, ("B-" if i == 0 else "I-") + kind) for i, word in enumerate(words)]
    return out


def sentence(rng: random.Random) -> list[tuple[str, str]]:
    """One sentence from a random template with random names filled in."""
    tokens: list[tuple[str, str]] = []
    for word in rng.choice(TEMPLATES).split():
        kind = word.strip("{}") if word.startswith("{") else None
        if kind is not None:
            tokens += tagged(rng.choice(TAGS[kind]), kind)
        else:
            tokens.append((word, "O"))
    if tokens[0][1] == "O":  # sentences start with a capital letter
        tokens[0] = (tokens[0][0].capitalize(), "O")
    return tokens


def main() -> None:
    """Write data/train.conll, data/validation.conll and data/test.conll."""
    rng = random.Random(2024)
    folder = Path(__file__).parent / "data"
    folder.mkdir(exist_ok=True)
    for split, size in SIZES.items():
        lines = ["-DOCSTART- O", ""]
        for _ in range(size):
            lines += [f"{token} {tag}" for token, tag in sentence(rng)] + [""]
        (folder / f"{split}.conll").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
