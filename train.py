"""`python train.py [overrides]`: see gan_lab/train.py and the README."""

from gan_lab.train import main

if __name__ == "__main__":
    main()
