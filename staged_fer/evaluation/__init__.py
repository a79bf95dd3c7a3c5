"""Scoring trained models: metrics, confusion matrices, figures, the experiment grid and its report.

Everything below ``scoring`` works on arrays of labels and class probabilities, so it is
tested without a model; ``stages/evaluate.py`` feeds it the predictions of the checkpoints.
"""
