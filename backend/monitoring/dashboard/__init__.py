"""The operator dashboard at ``/``: one page that says whether the platform does its job.

* ``series``    — task results, dead letters and dispatch runs counted per time bucket (one query each);
* ``queue_wait`` — how long the oldest message of each queue has waited (Redis broker);
* ``charts``    — those series drawn as SVG on the server (no JavaScript, no CDN);
* ``panels``    — freshness per class (``backend.tasks.freshness_targets``), queues, providers, liveness,
  open dead letters and recent runs, read for one page;
* ``views``     — the page, and the Replay/Discard buttons (the dead-letter operations admin uses).

Monitoring reads; the only writes are the dead-letter operations, which keep their own history.
"""
