"""Point transformer backbone, task heads and checkpoint loading."""
