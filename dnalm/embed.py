"""``python -m dnalm.embed``: the application lives in :mod:`dnalm.apps.embed`."""

import sys

from dnalm.apps.embed import main
from dnalm.configs import exit_on_renamed_config

if __name__ == "__main__":
    exit_on_renamed_config(sys.argv[1:])
    main()
