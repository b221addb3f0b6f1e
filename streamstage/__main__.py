"""Allow ``python -m streamstage``."""

from streamstage.cli import main

raise SystemExit(main())
