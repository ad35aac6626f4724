import sys

from demo.server import main

sys.exit(main())
