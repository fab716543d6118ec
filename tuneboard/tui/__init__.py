"""The terminal app: one client of the core (config, engine, store, plugins), built on Textual.

Nothing outside this package imports it, so the CLI and the core start without Textual.
"""
