"""``python -m dnalm.build``: the application lives in :mod:`dnalm.apps.build`."""

import sys

from dnalm.apps.build import main
from dnalm.configs import exit_on_renamed_config

if __name__ == "__main__":
    exit_on_renamed_config(sys.argv[1:])
    main()
