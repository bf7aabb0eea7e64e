import sys

from mnist_exp.report.cli import main

sys.exit(main())
