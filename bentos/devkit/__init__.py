"""Development tooling: processes, the dev EVM node, the emulator launcher, the test harness. Never in the Bento."""
