"""Staged transfer learning for facial expression recognition (Ng et al., ICMI 2015).

The library behind the DVC stages in ``stages/``: data sources, face alignment,
models, training and evaluation.
"""
