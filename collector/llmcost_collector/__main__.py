from llmcost_collector.cli.main import main

main()
