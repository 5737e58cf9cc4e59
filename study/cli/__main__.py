"""``python -m kdtune.study.cli``: the ``kdtune`` command."""

import sys

from .root import main

sys.exit(main())
