"""What the agency's workspace keeps beside the conversations: the case index (applicants.py
over catalog.py), staff notes and the audit log. Beside the engine: the engine feeds the
index through its watchers and the erasure registry reaches notes, index and log."""
