"""Data sources (FER-2013, EmotiW/SFEW), their decoded contracts, and the training splits."""
