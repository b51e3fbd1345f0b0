"""Re-estimate BatchNorm running statistics after pruning.

Cutting a layer's output channels changes what every consumer sees, so the running mean and variance its
BatchNorm learnt no longer fit; one pass over training images (no weight update) puts them back and recovers
much of the accuracy before any fine-tuning.
"""


def recalibrate_batchnorm(model, dataset, imgsz=416, max_images=64, batch_size=8):
    import numpy as np
    import torch
    from torch import nn

    from ..train.augment import letterboxed, to_batch

    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    if not bns:  # fused model: nothing to re-estimate
        return model
    saved = {m: m.momentum for m in bns}
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
    was_training = model.training
    model.train()
    samples = dataset.samples[:max_images]
    try:
        with torch.no_grad():
            for i in range(0, len(samples), batch_size):
                x, _ = to_batch([letterboxed(s, imgsz) for s in samples[i:i + batch_size]])
                model(torch.from_numpy(np.ascontiguousarray(x)))
    finally:
        for m, mom in saved.items():
            m.momentum = mom
        model.train(was_training)
    return model
