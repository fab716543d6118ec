"""Human review of predictions: which examples to show (`items`) and the label corrections
people give them (`corrections`), used by `tuneboard review`, the app's Review screen and
the `feedback` stage. No Textual, no torch.
"""
