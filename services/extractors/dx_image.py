"""Route placeholder: replaced by the real extractor (issue 5)."""
from shared.outcome import Failed


def extract(ds, options=None):
    raise Failed("the dx_image extractor is not built yet")
