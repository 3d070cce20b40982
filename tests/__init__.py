"""tritonrnn's test suite. A package so test modules can share `tests.common` and
`tests.tolerances`, and so pytest puts the repository root on sys.path."""
