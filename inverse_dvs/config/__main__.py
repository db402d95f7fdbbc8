"""`python -m inverse_dvs.config --markdown` prints the README's config table."""

import argparse
import sys

from .markdown import config_reference

p = argparse.ArgumentParser(prog="python -m inverse_dvs.config", description=__doc__)
p.add_argument("--markdown", action="store_true", required=True, help="print the README's config table")
p.parse_args()
sys.stdout.write(config_reference())
