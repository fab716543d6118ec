"""The public SDK behind `tuneboard`: the contracts and facades plugins are written against.

Modules here import nothing of tuneboard outside `tuneboard.sdk` (import contracts in
`pyproject.toml` keep it so); internals import from here, never the other way round.
"""
