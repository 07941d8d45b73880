import sys

from doseflow.cli import main

sys.exit(main())
