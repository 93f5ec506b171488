"""KVisa bot: the application (`kvisa.bot`) and its storage backends (`kvisa.storage`)."""
