"""Accuracy of annotations against the sample dataset's exact ground truth (``vtonpipe bench``)."""
