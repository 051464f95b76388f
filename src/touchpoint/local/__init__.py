"""Development services: embedded PostgreSQL, SMTP sink, Redis, local Airflow runs and
background processes."""
