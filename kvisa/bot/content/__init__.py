"""Loading and validating the YAML content in flows/."""
