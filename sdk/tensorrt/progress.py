"""Build progress through TensorRT's IProgressMonitor (TRT 10), shown as tqdm bars per optimizer phase."""
from ..progress import progress_bar

_classes = {}


def progress_monitor(trt, enabled=True):
    """An IProgressMonitor instance, or None when this TensorRT has none (8.x) or progress is off."""
    if not enabled or not hasattr(trt, "IProgressMonitor"):
        return None
    base = key = trt.IProgressMonitor
    if key not in _classes:

        class BuildProgress(base):
            def __init__(self):
                base.__init__(self)
                self.bars = {}
                self.phases = []

            def phase_start(self, phase_name, parent_phase, num_steps):
                self.phases.append(phase_name)
                self.bars[phase_name] = progress_bar(total=num_steps, desc=phase_name)

            def step_complete(self, phase_name, step):
                bar = self.bars.get(phase_name)
                if bar is not None:
                    bar.update(1)
                return True  # False would cancel the build

            def phase_finish(self, phase_name):
                bar = self.bars.pop(phase_name, None)
                if bar is not None:
                    bar.close()

        _classes[key] = BuildProgress
    return _classes[key]()
