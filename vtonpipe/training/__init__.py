"""Training stage: the data layer over packed shards, the trainer every model shares, metrics.

Modules: :mod:`~vtonpipe.training.data` (pair samples from ``packed/``), :mod:`~.transforms`
(resize rules), :mod:`~.task` (the Task protocol and registry models plug into), :mod:`~.trainer`
(the loop), :mod:`~.checkpoint`, :mod:`~.logging`, :mod:`~.distributed`, :mod:`~.metrics`.
"""
