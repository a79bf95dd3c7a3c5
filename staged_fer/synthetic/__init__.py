"""Offline stand-ins for FER-2013 and SFEW 2.0, written in exactly the real formats.

``fer.write_fer_csv`` writes Kaggle's fer2013.csv layout and ``sfew.write_sfew_tree`` the
SFEW 2.0 folder layout, so the real download, decoding, detection, alignment, training and
evaluation code runs on them unchanged. Both draw their faces with ``faces.render_patch``, so
the expression signal is the same in both; ``audit`` measures how often the real detector
and landmark model find the synthetic faces.
"""
