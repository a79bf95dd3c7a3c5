"""Fetch FER-2013 from where params.yaml says (`fer` section) into the canonical CSV.

Every source ends in the same step (canonical_csv.py): the CSV is found (a plain file, a
gzip-compressed one, or a member of Kaggle's ``fer2013.tar.gz`` or of a zip: archive.py),
streamed once while its MD5 is computed, written in the canonical ``emotion,pixels,Usage``
layout under a temporary name, and renamed only once it is complete and its checksum
verified. A download (http_download.py, kaggle_download.py) and the synthetic file go to a
temporary folder beside the output, removed on success and on failure alike, so an
interrupted or corrupt download never becomes the stage's output (fetch.py).

The checksum is that of the CSV as shipped (``fer2013.csv`` or ``icml_face_data.csv``,
uncompressed): ``fer.md5: canonical`` takes the one torchvision's FER2013 dataset lists for
that file (layouts.py), a hex digest is used as given, and ``null`` accepts any build (FER+
relabellings, re-exports) and records the digest it saw in the meta file (meta.py).

This file imports nothing, so that a module of the package (decode_fer reads meta.py) costs
its importer only what that module imports.
"""

BLOCK_SIZE = 1 << 20   # bytes read at a time from a download or a CSV
