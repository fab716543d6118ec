"""Benchmarks of tuneboard against a plain PyTorch loop and the HF Trainer; see BENCHMARKS.md."""
