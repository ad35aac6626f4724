import sys

from demo.web.server import main

sys.exit(main())
