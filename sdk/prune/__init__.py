"""Filter pruning of YOLOv7 models: importance criteria, per-layer keep counts, structural surgery.

- `criteria`: small callables that pick which output channels of a layer to keep (L1 norm, feature-map
  clustering), in the spirit of Torch-Pruning's importance objects.
- `stats`: the per-channel feature-map statistics (MG, VG, MB, VB) that the clustering criterion reads.
- `kmeans`: K-means++ in numpy.
- `plan`: which layers are prunable and how many channels each keeps (level or local ratios, rounding).
- `surgery`: the structural cut through Torch-Pruning's DependencyGraph, then the real channel counts written
  back into `model.yaml` so the SDK checkpoint reloads and exports like any other.
- `measure`: parameters and GFLOPs.

Everything here needs torch (the `torch` extra); the runtime path never imports it.
"""
