"""Demo data: a believable region for trying Varde out."""
