"""The Videos and Models API (``/v1``), as the openai SDK speaks it: the simulator's first dialect.

routes.py serves create, retrieve, list, delete, remix and content, and ``/v1/models``
(models.py); edits.py the edits and extensions; characters.py the characters; validation.py
reads and checks a request as the service does; envelope.py answers in the service's error
envelope; contract.py checks requests and answers against the reference description
(reference/). The jobs are the simulator's own (one store for every dialect).
"""
