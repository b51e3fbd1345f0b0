"""Size and cost of a model: parameters and GFLOPs (2 x multiply-accumulates of convolutions, at one input size)."""


def count_params(model):
    return int(sum(p.numel() for p in model.parameters()))


def count_gflops(model, imgsz=416):
    """Convolution FLOPs of one forward pass at imgsz x imgsz (what thop-style counters report, x2)."""
    import torch
    from torch import nn

    macs = []

    def hook(m, inputs, output):
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        macs.append(output.numel() * k)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, imgsz, imgsz))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return 2.0 * sum(macs) / 1e9
