import sys

from kimiwonosete.cli import main

sys.exit(main())
