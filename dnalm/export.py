"""``python -m dnalm.export``: the application lives in :mod:`dnalm.apps.export`."""

import sys

from dnalm.apps.export import main
from dnalm.configs import exit_on_renamed_config

if __name__ == "__main__":
    exit_on_renamed_config(sys.argv[1:])
    main()
