"""Benchmarks: run each as a module from the repository root, ``python -m benchmarks.NAME``.

Each prints JSON. Running them as modules (not as scripts) keeps this folder off the front
of ``sys.path``, where ``benchmarks/inspect.py`` would shadow the standard library.
"""
