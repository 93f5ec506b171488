"""Files the bot sends besides text: the timeline picture."""
