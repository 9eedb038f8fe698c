"""The GPU benchmark suite's parts (run through benchmarks/gpu_suite.py): settings, preflight,
the section runner, one module per measured area, and the wheels that travel to a GPU machine.
"""
