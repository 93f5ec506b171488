"""Retention: applicants silent for KVISA_RETENTION_MONTHS are told, then erased after
KVISA_RETENTION_NOTICE_DAYS unless they write again; records of people who never consented
and are older than a day (from before such records expired on their own) are erased too.

rules.py decides what is due for one stored record (pure), purge.py walks the storage once
(`kvisa purge`, and daily in `kvisa serve`), service.py runs that pass daily on the leader.
"""
