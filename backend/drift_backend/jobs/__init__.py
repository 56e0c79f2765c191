"""The job queue and what a job handler sees, shared by the worker and the job kinds.

Neither ``worker/`` (which claims and runs jobs) nor a job kind such as ``checks/`` (which
enqueues and handles them) imports the other: both import this package, and the composition
root (``main.py``, the ``worker`` command in ``cli.py``) hands the worker its table of job
kinds. Only :mod:`.queue` touches the ``jobs`` collection.
"""
