import sys

from salesplan.serve import main

sys.exit(main())
