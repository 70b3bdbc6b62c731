"""`python -m cxrules ...` runs the cxrules command (where the cxrules script is not on PATH)."""
from .cli import main

main()
