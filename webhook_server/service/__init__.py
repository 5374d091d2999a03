"""The composition root (``services.build``) and the job handlers it wires: the model jobs,
approvals, replay."""
