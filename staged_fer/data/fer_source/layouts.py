"""The two layouts FER-2013's CSV ships in, and the checksum of each as Kaggle serves it."""
from __future__ import annotations

from ..fer_csv import HEADER

FER_CSV = "fer2013.csv"             # header CANONICAL_HEADER: the layout download_fer writes
ICML_CSV = "icml_face_data.csv"     # the same rows, header ICML_HEADER: columns in another order
CANONICAL_HEADER = HEADER.encode()
ICML_HEADER = b"emotion, Usage, pixels"
# An archive is searched for these names in this order: fer2013.csv wins, as in torchvision.
CSV_NAMES = (FER_CSV, ICML_CSV)

# The MD5 of each file as shipped, uncompressed: what `fer.md5: canonical` checks. They are the
# digests torchvision's FER2013 dataset class checks the same files against (`FER2013._RESOURCES`,
# keys "fer" and "icml", in torchvision/datasets/fer2013.py; copied from torchvision 0.29.1).
# Written out rather than read from torchvision: importing it pulls in torch (seconds) for two
# strings. tests/test_fer_source.py checks that the installed torchvision still lists these.
CANONICAL_MD5 = {
    FER_CSV: "f8428a1edbd21e88f42c73edd2a14f95",
    ICML_CSV: "b114b9e04e6949e5fe8b6a98b3892b1d",
}


def expected_md5(spec: str | None, layout: str) -> str | None:
    """The digest ``fer.md5`` (``spec``) asks of a CSV in ``layout``; None: any is accepted."""
    if spec is None:
        return None
    return CANONICAL_MD5[layout] if spec == "canonical" else spec.lower()
