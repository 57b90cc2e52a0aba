"""`python -m ops` (what bin/bluegreen runs)."""

from ops.cli import main

raise SystemExit(main())
