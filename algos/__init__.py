"""Algorithms: one readable file each (``python algos/<name>.py --help``)."""
