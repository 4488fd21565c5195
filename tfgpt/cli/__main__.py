"""``python -m tfgpt.cli``: the ``tfgpt`` command."""

import sys

from tfgpt.cli import main

sys.exit(main())
