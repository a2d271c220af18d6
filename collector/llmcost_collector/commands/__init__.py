"""One module per `llmcost` subcommand (see ``llmcost_collector.cli``)."""
