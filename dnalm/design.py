"""``python -m dnalm.design``: the application lives in :mod:`dnalm.apps.design`."""

import sys

from dnalm.apps.design import main
from dnalm.configs import exit_on_renamed_config

if __name__ == "__main__":
    exit_on_renamed_config(sys.argv[1:])
    main()
