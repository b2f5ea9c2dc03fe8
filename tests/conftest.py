import sys
from pathlib import Path

# tests/support holds the harness shared by unit and integration tests.
sys.path.insert(0, str(Path(__file__).parent))
