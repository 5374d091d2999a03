"""The scale-out drill (``bench/drill.py``, ``tests/integration/test_scale_drill.py``):
several Podium nodes and workers on one PostgreSQL database under chaos, then the
invariants. ``cluster`` starts and kills the processes, ``balancer`` stands in for the load
balancer, ``judge`` decides by registry tags, ``traffic`` asks for the transitions and
approves them, ``chaos`` injects the faults, ``invariants`` checks what must hold after."""
