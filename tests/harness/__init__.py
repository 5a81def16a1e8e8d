"""End-to-end harness shared by tests/chaos and bench/e2e.py: own servers, the whole pipeline.

Importable as `harness` (tests/ is on sys.path for the chaos suite; bench/e2e.py adds it).
"""
