"""The canonical FER-2013 CSV, Kaggle's fer2013.csv: what download_fer writes, decode_fer reads
and the synthetic source imitates.

A header, then one line a face: ``emotion,pixels,Usage``, the label (FER order, 0-6), the face's
SIDE x SIDE gray levels separated by spaces, and which of USAGES the face belongs to.
"""

HEADER = "emotion,pixels,Usage"
# Kaggle's row order: every Training row, then PublicTest, then PrivateTest.
USAGES = ("Training", "PublicTest", "PrivateTest")
SIDE = 48
