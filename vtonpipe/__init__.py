"""vtonpipe: reproducible priors for virtual try-on research.

Raw VTON datasets go through a DVC-tracked DAG of annotators (keypoints, parsing, DensePose IUV,
body fits, SMPL flow, garment landmarks) into versioned, sharded Parquet/NPZ.
"""

__version__ = "0.1.0"
