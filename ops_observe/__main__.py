"""``python -m ops_observe`` is the ``ops-observe`` command."""

import sys

from ops_observe.cli import main

sys.exit(main())
