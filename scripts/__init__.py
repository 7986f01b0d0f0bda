"""Entry points: run the platform, make test voices, register encoders, benchmarks."""
