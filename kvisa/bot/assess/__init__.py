"""Batch assessment for enterprises' HR (`kvisa assess`): reading the candidates' files
(JSON, CSV in UTF-8 or GB18030, XLSX), writing the results (JSON lines or XLSX)."""
