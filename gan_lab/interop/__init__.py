"""Models of other projects as lab checkpoints, read as data (no code from their files runs).

* ``stylegan2_ada``: NVIDIA's stylegan2-ada-pytorch pickles (``torch_utils.persistence``);
* ``rosinality``: rosinality's stylegan2-pytorch ``torch.save`` checkpoints;
* ``pickles``: the restricted unpickler both rely on for foreign pickles;
* ``keys``: their state-dict names and the lab's;
* ``convert``: an imported model as a lab checkpoint (``import_stylegan2``), which
  ``generate.py ckpt=``, ``evaluate.py ckpt=`` and ``train.py ckpt_path=`` (fine-tuning) accept;
* ``cli``: ``python scripts/import_stylegan2.py SRC OUT.ckpt``.
"""
