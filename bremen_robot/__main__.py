import sys

from bremen_robot.cli import main

sys.exit(main())
