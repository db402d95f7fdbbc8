"""`python -m inverse_dvs.tiny [--out checkpoints]`: builds the tiny offline checkpoints (inverse_dvs.testing.tiny)."""

from .testing.tiny import main

if __name__ == "__main__":
    raise SystemExit(main())
