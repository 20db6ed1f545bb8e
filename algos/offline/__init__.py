"""Offline RL algorithms: one readable file each, learning from a fixed dataset."""
