"""Airflow glue: DAG defaults, pools and Assets, the Cosmos task group, connections, failure
alerts, Celery."""
