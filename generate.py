"""`python generate.py ckpt=PATH ...`: see gan_lab/generate.py and the README."""

from gan_lab.generate import main

if __name__ == "__main__":
    main()
