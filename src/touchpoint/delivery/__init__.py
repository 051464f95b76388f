"""Email delivery: recipients, MIME messages, the SMTP session, the delivery ledger and the
send loop."""
