"""The Python sealing client of Pli's application API: seal on your machine, send ``e2e``.

A small library for health software. It never imports FastAPI (an import-linter contract
says so): it needs ``httpx``, ``crypto`` and ``messaging``'s transparency checks only.

What it does, for each message:

1. gets a bearer token with the client credentials (``POST /v1/oauth/token``);
2. opens the client mailbox's own keys **locally**: it downloads the key bundle sealed under
   its secret (``GET /v1/mailbox/key-bundle``) and derives the key with Argon2id from the
   secret, so the private keys are never sent by the server;
3. looks up each recipient's keys with their transparency proof
   (``GET /v1/directory/mailboxes/{address}``) and checks the proof against the log's public
   key (:class:`messaging.transparency.KeyVerifier`); a key whose proof fails is refused
   (:class:`KeyRefused`), nothing is sent;
4. seals the message for the recipients and its own Sent copy (:func:`crypto.seal_envelope`),
   signed with the mailbox's own key, and posts the envelope and the key slots
   (``POST /v1/messages/sealed``, with an ``Idempotency-Key``).

Usage::

    async with SealingClient(
        "https://pli.example", client_id="pli_…", client_secret="…",
        log_key=LOG_PUBLIC_KEY, log_id="pli.example/keys/v1",
    ) as client:
        sent = await client.send(["dr.martin@medecin.pli.example"], mime_bytes)

:func:`verify_webhook` checks the signature and the freshness of a webhook request.
"""

from web.client.sealing import KeyRefused, SealingClient, SealingError
from web.client.webhooks import WebhookRefused, verify_webhook

__all__ = ["SealingClient", "SealingError", "KeyRefused", "verify_webhook", "WebhookRefused"]
