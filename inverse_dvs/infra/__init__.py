"""Plumbing below the config: errors, atomic artifacts and records on disk, video files, where artifacts live, devices,
trajectory files and model weights on disk. Nothing here knows the config."""
