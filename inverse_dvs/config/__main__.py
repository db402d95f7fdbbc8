"""`python -m inverse_dvs.config --markdown` prints the README's config table."""

import sys

from .markdown import config_reference

if sys.argv[1:] != ["--markdown"]:
    sys.exit("usage: python -m inverse_dvs.config --markdown   (prints the README's config table)")
sys.stdout.write(config_reference())
