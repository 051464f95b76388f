"""The Airflow resources the DAGs share: the CRM API pool and the marts Asset.

The pool must exist in the Airflow deployment (``airflow pools set crm_api 2 "..."``);
``touchpoint.local.airflow_runs`` creates it for the demo and the tests.
"""

from __future__ import annotations

from airflow.sdk import Asset

#: Bounds concurrent HubSpot API calls across all runs: each extract_crm_* task takes one slot.
CRM_POOL = "crm_api"
CRM_POOL_SLOTS = 2
CRM_POOL_DESCRIPTION = "HubSpot API: concurrent CRM extract tasks (each is rate-limited itself)"

#: Updated when an ingest run has built and checked the marts for its interval.
MARTS_ASSET = Asset(name="touchpoint_marts", uri="touchpoint://warehouse/marts", group="touchpoint")
