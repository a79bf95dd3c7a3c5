"""Training: the SGD loop with resume and DDP, DVCLive logs, and the two phases end to end.

Training stands on the input path (staged_fer/inputs) and on the models with their checkpoint
format (staged_fer/models/checkpoint.py); evaluation and prediction stand on the same two
floors and never import this package.
"""
