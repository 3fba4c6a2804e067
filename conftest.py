"""pytest configuration for the whole repository (unit tests, doctests and nbval over the chapters).

nbval's strict comparison of the chapters' outputs compares numbers up to rounding (a relative
1e-9), so that the suite passes on any CPU: see ``tools/nbval_numbers.py``.
"""

from tools.nbval_numbers import install

install()
