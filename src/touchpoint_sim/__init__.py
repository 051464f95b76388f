"""Development infrastructure: a seeded simulator of the CRM, email and web systems.

It plays HubSpot (an HTTP API on loopback), SendGrid (webhook batches in a landing folder) and
Segment (the S3 destination's gzipped NDJSON). The product never imports this package.
"""
