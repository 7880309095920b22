"""``python -m dnalm.report``: the application lives in :mod:`dnalm.apps.report`."""

from dnalm.apps.report import main

if __name__ == "__main__":
    raise SystemExit(main())
