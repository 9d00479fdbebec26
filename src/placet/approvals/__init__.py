"""Approvals room: quorum helpers and outgoing notifications (webhooks, Slack, email).

Pure or edge-only code that imports nothing of placet but ``placet.domain``; the service
room decides when to notify and stores the outbox.
"""
