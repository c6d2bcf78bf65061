"""minild: a small, strict linker for a documented JSON object format.

The pipeline lives in `minild.link`; the command line in `minild.cli`.
"""

__version__ = "0.1.0"
