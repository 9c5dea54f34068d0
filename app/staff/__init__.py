"""The staff console: find a patient, see what is held, release, withhold, write visit summaries."""
