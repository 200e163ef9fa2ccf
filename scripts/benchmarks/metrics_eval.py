"""One FID/KID evaluation: the lab's (one pass of the feature extractor per fake batch, shared by
FID and KID) next to the former way (torchmetrics' FID and KID each running the extractor on the
images) (``make bench-metrics``).

Setup: the tiny Fashion-MNIST of the tests (256 train images, written to a temporary folder), its
domain classifier (trained there, once), its real features, and a DCGAN generator (width 32,
32x32, gray, random weights: generation costs the same as a trained one's). Each evaluation
scores ``--num-fake`` fakes of the same seeded latents in batches of ``--batch``. The two ways
alternate, their order swapped every repeat, so the machine's noise hits both alike; reported:
wall and CPU (process) seconds per evaluation (min/median/max over repeats) and the ratios
shared/separate per repeat (min/median/max); on a loaded machine the CPU ratio is the steadier.
The scores of the two ways are checked equal. Writes ``scripts/benchmarks/results/metrics_eval.json``;
the last line printed is the headline.

    python scripts/benchmarks/metrics_eval.py [--num-fake 2000] [--batch 100] [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from gan_lab.data import FashionMNISTDataModule  # noqa: E402
from gan_lab.metrics.domain import load_or_train  # noqa: E402
from gan_lab.metrics.features import FeatureExtractor  # noqa: E402
from gan_lab.metrics.quality import QualityMetrics, real_features  # noqa: E402
from gan_lab.nn.dcgan import DCGANGenerator  # noqa: E402
from tests.conftest import write_fashion_mnist  # noqa: E402

Sample = Callable[[int, int], torch.Tensor]


@torch.no_grad()
def separate_passes(
    extractor: FeatureExtractor, reals: torch.Tensor, sample: Sample, num_fake: int, batch: int, subset: int
) -> dict[str, float]:
    """The former evaluation: FID and KID built over the extractor, each fed the images."""
    fid = FrechetInceptionDistance(feature=extractor, reset_real_features=False)
    kid = KernelInceptionDistance(
        feature=extractor, subsets=100, subset_size=subset, reset_real_features=False
    )
    fid.update(reals, real=True)  # 2-D: the extractor passes cached features through
    kid.update(reals, real=True)
    done, index = 0, 0
    while done < num_fake:
        n = min(batch, num_fake - done)
        images = sample(index, n).float()
        fid.update(images, real=False)
        kid.update(images, real=False)
        done, index = done + n, index + 1
    score = float(fid.compute())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        kid_mean, kid_std = kid.compute()
    return {"fid": score, "kid": float(kid_mean), "kid_std": float(kid_std)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-fake", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        write_fashion_mnist(root / "FashionMNIST" / "raw")
        data = {"root": str(root), "search_dirs": [], "download": False}
        extractor, _ = load_or_train("fashion_mnist", tmp, data)
        dm = FashionMNISTDataModule(str(root), search_dirs=[], download=False, batch_size=16)
        dm.prepare_data()
        dm.setup("fit")
        reals = real_features(dm, extractor, 256, tmp)
    torch.manual_seed(0)
    G = DCGANGenerator(z_dim=100, resolution=32, channels=1, width=32).eval()
    latents = torch.randn(args.num_fake, 100, generator=torch.Generator().manual_seed(1))

    @torch.no_grad()
    def sample(index: int, n: int) -> torch.Tensor:
        return G(latents[index * args.batch : index * args.batch + n])

    shared = QualityMetrics(extractor, reals, kid_subsets=100, kid_subset_size=1000, num_fake=args.num_fake)
    shared.to("cpu")
    ways: dict[str, Callable[[], dict[str, float]]] = {
        "shared": lambda: shared.evaluate(sample, args.num_fake, args.batch),
        "separate": lambda: separate_passes(
            extractor, reals, sample, args.num_fake, args.batch, shared.kid_subset_size
        ),
    }
    for run in ways.values():  # warm-up (allocator, kernels), not timed
        run()
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    cpu: dict[str, list[float]] = {name: [] for name in ways}
    scores: dict[str, dict[str, float]] = {}
    for repeat in range(args.repeats):
        for name in ways if repeat % 2 == 0 else reversed(list(ways)):
            start, start_cpu = time.perf_counter(), time.process_time()
            scores[name] = ways[name]()
            seconds[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    if scores["shared"] != scores["separate"]:
        raise SystemExit(f"the two ways disagree: {scores}")
    ratios = [a / b for a, b in zip(seconds["shared"], seconds["separate"], strict=True)]
    cpu_ratios = [a / b for a, b in zip(cpu["shared"], cpu["separate"], strict=True)]

    def spread(values: list[float]) -> dict[str, float]:
        return {"min": min(values), "median": statistics.median(values), "max": max(values)}

    result = {
        "num_fake": args.num_fake,
        "batch": args.batch,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "scores": scores["shared"],
        "seconds": {name: spread(values) for name, values in seconds.items()},
        "ratio_shared_over_separate": spread(ratios),
        "cpu_seconds": {name: spread(values) for name, values in cpu.items()},
        "cpu_ratio_shared_over_separate": spread(cpu_ratios),
    }
    out = Path(__file__).parent / "results" / "metrics_eval.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    for key in ("seconds", "cpu_seconds"):
        for name in ways:
            s = result[key][name]
            print(f"{name:9s} {key}/eval min {s['min']:.3f}  median {s['median']:.3f}  max {s['max']:.3f}")
    r, c = result["ratio_shared_over_separate"], result["cpu_ratio_shared_over_separate"]
    print(
        f"one evaluation ({args.num_fake} fakes, domain features), shared/separate over {args.repeats} "
        f"repeats: wall {r['median']:.2f} (min {r['min']:.2f}, max {r['max']:.2f}), "
        f"CPU {c['median']:.2f} (min {c['min']:.2f}, max {c['max']:.2f})"
    )


if __name__ == "__main__":
    main()
