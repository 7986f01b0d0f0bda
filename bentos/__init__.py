"""VoxPersona platform: BentoML services and the modules they wrap."""
