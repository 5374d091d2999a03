"""What comes in: a delivery's sources (MLflow, Databricks, Slack), its validation, the registry
events it carries, and the durable intake that stores it and queues its job."""
