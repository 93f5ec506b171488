"""Everything the bot keeps, to and from a file (`kvisa export`, `kvisa import`) and from
SQLite to Redis (`kvisa migrate`): format.py is the file, transfer.py the work, cli.py the
commands."""
