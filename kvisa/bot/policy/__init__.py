"""Pure policy: answers and dates in, verdict, checklist and deadlines out. No I/O, no clock."""
