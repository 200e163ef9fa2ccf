"""`python evaluate.py ckpt=PATH ...`: see gan_lab/evaluate.py and the README."""

from gan_lab.evaluate import main

if __name__ == "__main__":
    main()
