"""Train (once) the classifier behind domain FID/KID (``make domain-classifier``):
``python scripts/domain_classifier.py --data fashion_mnist``.

The same as ``python -m gan_lab.metrics.domain``: the weights are cached under
``~/.cache/gan_lab/domain`` (``GAN_LAB_CACHE``); ``--help`` lists the options.
"""

from __future__ import annotations

import sys

from gan_lab.metrics.domain import main

if __name__ == "__main__":
    sys.exit(main())
