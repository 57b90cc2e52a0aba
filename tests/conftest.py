import sys
from pathlib import Path

# The program's packages (core, components, providers) import from the project dir, as under `pulumi up`.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
