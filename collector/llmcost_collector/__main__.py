import sys

from llmcost_collector.cli.main import main

sys.exit(main())
