"""Import a StyleGAN2 model from stylegan2-ada-pytorch (``.pkl``) or rosinality's stylegan2-pytorch
(``.pt``) as a gan_lab checkpoint: ``python scripts/import_stylegan2.py SRC OUT.ckpt [OVERRIDE ...]``.

The same as ``python -m gan_lab.interop``; see ``gan_lab/interop/cli.py`` for the options and
``gan_lab/interop/pickles.py`` for why no code from SRC ever runs.
"""

from __future__ import annotations

import sys

from gan_lab.interop.cli import main

if __name__ == "__main__":
    sys.exit(main())
