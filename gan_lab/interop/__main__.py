"""``python -m gan_lab.interop SRC OUT.ckpt``: the importer (``gan_lab/interop/cli.py``)."""

import sys

from gan_lab.interop.cli import main

sys.exit(main())
