"""``python scripts/import_stylegan2.py SRC OUT.ckpt [OVERRIDE ...]``: a stylegan2-ada-pytorch pickle or a
rosinality stylegan2-pytorch checkpoint as a lab checkpoint.

    python scripts/import_stylegan2.py network-snapshot-000400.pkl ffhq256.ckpt
    python scripts/import_stylegan2.py cifar10.pkl cifar10.ckpt data=cifar10 data.root=~/data
    python scripts/import_stylegan2.py 550000.pt faces.ckpt data.root=~/faces      # rosinality
    python scripts/import_stylegan2.py stylegan2-ffhq-config-f.pt ffhq.ckpt --fresh-d

OVERRIDEs (Hydra syntax) choose the data the checkpoint records, which ``evaluate.py`` scores
against (default ``data=image_folder`` with the folder the file names, if any); the networks'
resolution, channels and classes are the file's. Nothing in SRC is executed: see
``gan_lab/interop/pickles.py``. Any refusal is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys

from gan_lab.errors import GanLabError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="import_stylegan2.py",
        description="Import a StyleGAN2 model of stylegan2-ada-pytorch (.pkl) or rosinality's "
        "stylegan2-pytorch (.pt) as a gan_lab checkpoint, without running code from the file.",
    )
    p.add_argument("src", metavar="SRC", help="network-snapshot-*.pkl / published .pkl, or rosinality .pt")
    p.add_argument("out", metavar="OUT.ckpt", help="the lab checkpoint to write")
    p.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="data=... data.root=... (Hydra syntax)")
    p.add_argument("--fresh-d", action="store_true", help="a file without D (rosinality g_ema only): new D")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    return p


def summary(result: dict) -> str:
    g, d = result["generator"], result["discriminator"]
    classes = f", {g['num_classes']} classes" if g["num_classes"] else ""
    lines = [
        f"imported {result['file']} ({result['source']}, sha256 {result['sha256'][:12]})",
        f"  G: {g['resolution']}x{g['resolution']}x{g['channels']}{classes}, z {g['z_dim']}, w {g['w_dim']}, "
        f"map {g['map_layers']}, channel_base {g['channel_base']}, channel_max {g['channel_max']}, "
        f"conv_clamp {g['conv_clamp']}: {result['parameters']['G']:,} parameters",
        f"  D: {d['architecture']}, mbstd {d['mbstd_group']}x{d['mbstd_channels']}: "
        f"{result['parameters']['D']:,} parameters",
        f"  w_avg: {result['w_avg']}",
        *(f"  note: {n}" for n in result["notes"]),
        f"wrote {result['out']}",
        f"  python generate.py ckpt={result['out']}",
        f"  python evaluate.py ckpt={result['out']}  (data: {result['data']['_target_'].rsplit('.', 1)[-1]}, "
        f"root {result['data'].get('root')}; data_root=DIR if elsewhere)",
        f"  python train.py ckpt_path={result['out']} data=... (fine-tuning, data of "
        f"{g['resolution']}x{g['resolution']}x{g['channels']})",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from gan_lab.interop.convert import import_stylegan2

    try:
        result = import_stylegan2(args.src, args.out, args.overrides, fresh_d=args.fresh_d, force=args.force)
    except GanLabError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except Exception as e:  # a crafted file's impossible sizes, types or cycles, past what the readers check
        reason = " ".join(str(e).split())[:300] or type(e).__name__
        print(f"error: SRC={args.src} cannot be imported ({type(e).__name__}: {reason})", file=sys.stderr)
        return 2
    print(summary(result))
    return 0
