"""inverse-dvs: training-free dynamic view synthesis as an inverse problem (arXiv 2506.08004)."""

__version__ = "0.1.0"
