"""The local StepFun-compatible emulator: a real HTTP server with StepFun's audio contract and an offline
voice engine. Run it with `python -m bentos.stepfun.emulator`, or from Python with
`bentos.devkit.emulator_process.EmulatorProcess`.
"""
