"""Small shared helpers: atomic file output, run metadata, errors."""
