"""Publishing content versions: `kvisa content ...`, and re-checking applicants against a
candidate version."""
