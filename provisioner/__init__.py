"""The reference provisioner: steps 6-16 of the business process, as a separate system.

It shares nothing with the registry but the message contract (``registry.contract``) and the
NATS helper (``registry.natsutil``): it reads provisioning messages from JetStream, writes
manifests to a GitOps repository, and reports each step back on NATS. Run it with
``reference-provisioner`` (or ``python -m provisioner``); ``make run`` runs it in-process.
"""
