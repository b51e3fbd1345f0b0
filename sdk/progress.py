"""Progress bars for long work (tqdm when installed, else a silent pass-through)."""
import sys


def progress_bar(iterable=None, desc="", total=None, disable=False, **kw):
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable if iterable is not None else _Null()
    return tqdm(iterable, desc=desc, total=total, disable=disable or not sys.stderr.isatty(),
                file=sys.stderr, leave=False, dynamic_ncols=True, **kw)


class _Null:
    def update(self, n=1):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        pass
