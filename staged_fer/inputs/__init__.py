"""The input path: how grayscale faces become a model's input, on the device.

Both training and prediction feed models through this package, so it sits below both (and
below ``models``): it knows nothing of networks beyond their input spec (size, per-channel
mean and std).

  config.py   params.yaml's `input` section: the resize before the crop, the training flip
  batches.py  image banks as uint8 tensors on the device; crops, resampling and normalisation
  gray.py     conv1 folded to read one grayscale channel exactly as three replicated ones
"""
