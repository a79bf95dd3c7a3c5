"""Emotion labels: FER-2013's integer order is the one used everywhere in the project."""

# Index = label id, as in fer2013.csv's `emotion` column.
EMOTIONS = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
NUM_CLASSES = len(EMOTIONS)
LABEL_OF = {name: i for i, name in enumerate(EMOTIONS)}

# The order of the paper's confusion matrices (Figure 4): FE SA HA SU DI AN NE.
PAPER_ORDER = ("Fear", "Sad", "Happy", "Surprise", "Disgust", "Angry", "Neutral")
PAPER_ABBREV = {"Fear": "FE", "Sad": "SA", "Happy": "HA", "Surprise": "SU",
                "Disgust": "DI", "Angry": "AN", "Neutral": "NE"}

UNLABELED = -1
