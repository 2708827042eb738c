"""``python -m pointsd`` runs the command line."""

import sys

from pointsd.cli import main

sys.exit(main())
