"""Training: the on-device input path, the SGD loop with resume and DDP, checkpoints, inference.

Both training stages share this package; ``inference`` is what evaluation uses to rebuild a
checkpoint and score faces with exactly the validation transform of training.
"""
