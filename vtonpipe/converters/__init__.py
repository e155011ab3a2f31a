"""Converters between representations: keypoint layouts, label sets, IUV."""
