"""`python project.py ckpt=PATH target=IMG ...`: see gan_lab/project.py and the README."""

from gan_lab.project import main

if __name__ == "__main__":
    main()
