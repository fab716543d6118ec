"""Text presentation shared by the command line and the app: numbers, times, statuses, tables.

It imports nothing of tuneboard but the store's row types (and neither Textual nor click), so
any layer may format a value the way the user sees it everywhere else, as sweeps do when they
label their runs, and the CLI and the app compare runs by the same rules (`comparison`).
"""
