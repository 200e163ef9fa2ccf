"""Sample-quality metrics: feature extractors, FID/KID through torchmetrics, the evaluator."""
