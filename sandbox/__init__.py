"""Local stand-ins for Courier's outside services; they import nothing from ``courier``.

- ``sandbox.sms_gateway.create_sms_app``: Twilio-compatible Messages API (2010-04-01).
- ``sandbox.docstore.create_docstore_app``: document store serving unguessable links.
- ``sandbox.invoice_api.create_invoice_api_app``: paginated invoice API over a JSONL file.
- ``sandbox.server.run_in_thread``: host any of them on a loopback port (tests).
- ``python -m sandbox``: run all three in one process.
"""
