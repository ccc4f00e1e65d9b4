"""The `scagent` command: one module per command group; every command calls the library."""
