"""Bridges from other tools into tuneboard projects (each imports its tool only when imported)."""
